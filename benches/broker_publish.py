"""Registrations per second to the Celery broker: Redis against RabbitMQ, in the same run.

An outbox is filled with N registrations (what N series' ends leave), then a receiver is
started on it with ``OXIDICOM_CELERY_BROKER`` set: it publishes them all, oldest first, one
confirmed publish at a time. The clock runs from the receiver's "connected" line until the
outbox is empty. Meanwhile a second association sends a C-ECHO every ``--echo-every`` s and
times each round trip: what a PACS sees of the receiver's loop while it publishes. Brokers
alternate, ``--repeats`` times each; the medians are compared as a ratio.

    .venv/bin/python benches/broker_publish.py --registrations 2000 --repeats 3

Redis: database 7 of 127.0.0.1:6379 (emptied before and after); RabbitMQ: guest@127.0.0.1,
a queue of the run's own, deleted after. Output on /dev/shm: the receiver's and broker's
cost, not the disk's.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _receiver import start_receiver  # type: ignore[import-not-found]
from end_of_association import Echoes, outbox_count  # type: ignore[import-not-found]

from oxidicom.notify.celery import TASK_NAME
from oxidicom.notify.outbox import Outbox, Registration
from tests.sample_data import EXPECTED_TASKS, SAG_UID

REDIS_URL = "redis://127.0.0.1:6379/7"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
#: The SAG series' registration (the task's keyword arguments), made N different series.
KWARGS = EXPECTED_TASKS[SAG_UID] | {"pacs_name": "BENCH"}


def fill(outbox_dir: Path, queue: str, count: int) -> None:
    outbox = Outbox(outbox_dir)
    outbox.prepare()
    for n in range(count):
        uid = f"1.2.826.0.1.3680043.10.{n}"
        kwargs = KWARGS | {"SeriesInstanceUID": uid, "path": f"SERVICES/PACS/BENCH/s/t/{n}"}
        outbox.add(Registration.new(TASK_NAME, queue, kwargs), sync_directory=False)
    outbox.sync()


def clean(broker: str, queue: str) -> None:
    if broker == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        client.close()
        return
    from kombu import Connection

    with Connection(AMQP_URL) as connection:
        channel = connection.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)


def run(broker: str, count: int, out_dir: Path, every: float) -> dict[str, float]:
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    url = REDIS_URL if broker == "redis" else AMQP_URL
    clean(broker, queue)
    with tempfile.TemporaryDirectory(dir=out_dir) as work:
        fill(Path(work) / "outbox", queue, count)
        receiver = start_receiver(
            Path(work),
            {
                "OXIDICOM_CELERY_BROKER": url,
                "OXIDICOM_QUEUE_NAME": queue,
                "OXIDICOM_LOG_LEVEL": "INFO",  # as shipped: a line per registration
            },
        )
        try:
            echoes = Echoes(receiver.port, every)
            echoes.start()
            started = time.perf_counter()
            while outbox_count(receiver.outbox_dir) > 0:
                time.sleep(0.005)
            elapsed = time.perf_counter() - started
            echoes.stop()
        finally:
            code = receiver.stop()
            clean(broker, queue)
        assert code == 0, receiver.log()[-2000:]
        assert not re.search(r"WARNING|ERROR", receiver.log()), receiver.log()[-2000:]
    times = sorted(echoes.times)
    return {
        "per_s": count / elapsed,
        "echo_median_ms": statistics.median(times) * 1e3,
        "echo_max_ms": times[-1] * 1e3,
        "echoes": len(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registrations", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--echo-every", type=float, default=0.01)
    parser.add_argument("--out-dir", type=Path, default=Path("/dev/shm"))
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"redis": [], "amqp": []}
    for _ in range(args.repeats):
        for broker in results:
            result = run(broker, args.registrations, args.out_dir, args.echo_every)
            results[broker].append(result)
            print(broker, {k: round(v, 2) for k, v in result.items()}, flush=True)
    print(f"\n{args.registrations} registrations, {args.repeats} runs each (medians)")
    print("| broker | registrations/s | C-ECHO median ms | C-ECHO max ms |")
    print("|---|---:|---:|---:|")
    medians = {}
    for broker, runs in results.items():
        medians[broker] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        m = medians[broker]
        print(
            f"| {broker} | {m['per_s']:.0f} | {m['echo_median_ms']:.2f} | {m['echo_max_ms']:.1f} |"
        )
    print(f"\nRedis/AMQP: {medians['redis']['per_s'] / medians['amqp']['per_s']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
