"""The end of one association that stored N single-instance series (a CR/DX migration).

One raw peer stores N tiny instances, each of its own series, in one association, then
releases it. Meanwhile a second association sends a C-ECHO every ``--echo-every`` s and
times each round trip: what another peer sees of the receiver's event loop while the first
association's end is worked off. The end is over when the outbox holds N registrations
(no broker is configured, so they stay there). The receiver's VmRSS and VmHWM are read
from /proc before the association, before the release and after the end.

    .venv/bin/python benches/end_of_association.py --series 2000,10000
    .venv/bin/python benches/end_of_association.py --tree /tmp/main-ref   # another checkout
    .venv/bin/python benches/end_of_association.py --nats nats://127.0.0.1:4222 --log-level DEBUG

``--tree`` runs the receiver from another checkout (PYTHONPATH), the bench itself from this
one. Output on /dev/shm by default: the receiver's own cost, not the disk's.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

from _receiver import start_receiver  # type: ignore[import-not-found]

from tests.integration.many_series import memory_kib, open_migration, store_all
from tests.integration.raw_peer import IMPLICIT_LE, VERIFICATION, RawPeer, associate_rq


class Echoes:
    """A second association sending C-ECHO every ``every`` s, timing each round trip."""

    def __init__(self, port: int, every: float) -> None:
        self.peer = RawPeer.connect(port)
        self.peer.associate(associate_rq("ECHOER", contexts=((VERIFICATION, IMPLICIT_LE),)))
        self.every = every
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        message_id = 0
        while not self._stop.is_set():
            message_id = message_id % 65535 + 1
            start = time.perf_counter()
            assert self.peer.c_echo(message_id) == 0
            self.times.append(time.perf_counter() - start)
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.peer.release()
        self.peer.close()


def outbox_count(outbox: Path) -> int:
    try:
        return sum(1 for n in os.listdir(outbox) if n.endswith(".json") and n[0] != ".")
    except FileNotFoundError:
        return 0


def run(
    series: int, tree: str | None, out_dir: Path, every: float, nats: str | None, level: str
) -> dict[str, float]:
    env = {"OXIDICOM_LOG_LEVEL": level}
    if tree:
        env["PYTHONPATH"] = tree
    if nats:
        env["OXIDICOM_NATS_ADDRESS"] = nats
    with tempfile.TemporaryDirectory(dir=out_dir) as work:
        receiver = start_receiver(Path(work), env)
        pid = receiver.process.pid
        try:
            before = memory_kib(pid)
            with open_migration(receiver.port) as peer:
                started = time.perf_counter()
                store_all(peer, series)
                stored = time.perf_counter() - started
                stored_memory = memory_kib(pid)
                echoes = Echoes(receiver.port, every)
                echoes.start()
                time.sleep(0.2)  # a few round trips of an idle loop first
                released = time.perf_counter()
                peer.release()
            while outbox_count(receiver.outbox_dir) < series:
                time.sleep(0.01)
            ended = time.perf_counter() - released
            time.sleep(0.1)
            echoes.stop()
            after = memory_kib(pid)
        finally:
            code = receiver.stop()
        assert code == 0, receiver.log()[-2000:]
        lonk = re.search(r"LONK: (\d+) message\(s\) sent, (\d+) dropped", receiver.log())
    times = sorted(echoes.times)
    return {
        "series": series,
        "store_s": stored,
        "end_s": ended,
        "end_us_per_series": ended / series * 1e6,
        "echoes": len(times),
        "echo_max_ms": times[-1] * 1e3,
        "echo_p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3,
        "echo_median_ms": statistics.median(times) * 1e3,
        "rss_before_mib": before["VmRSS"] / 1024,
        "rss_stored_mib": stored_memory["VmRSS"] / 1024,
        "rss_after_mib": after["VmRSS"] / 1024,
        "hwm_mib": after["VmHWM"] / 1024,
        "lonk_sent": int(lonk.group(1)) if lonk else 0,
        "lonk_dropped": int(lonk.group(2)) if lonk else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", default="2000,10000", help="comma-separated N")
    parser.add_argument("--tree", help="run the receiver from this checkout (PYTHONPATH)")
    parser.add_argument("--out-dir", default="/dev/shm", type=Path)
    parser.add_argument("--echo-every", default=0.02, type=float)
    parser.add_argument(
        "--nats", help="OXIDICOM_NATS_ADDRESS (LONK messages), e.g. nats://127.0.0.1:4222"
    )
    parser.add_argument("--log-level", default="INFO", help="OXIDICOM_LOG_LEVEL")
    args = parser.parse_args()
    columns = (
        "series",
        "store_s",
        "end_s",
        "end_us_per_series",
        "echoes",
        "echo_max_ms",
        "echo_p99_ms",
        "echo_median_ms",
        "rss_before_mib",
        "rss_stored_mib",
        "rss_after_mib",
        "hwm_mib",
        "lonk_sent",
        "lonk_dropped",
    )
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for n in (int(x) for x in args.series.split(",")):
        result = run(n, args.tree, args.out_dir, args.echo_every, args.nats, args.log_level)
        print("| " + " | ".join(f"{result[c]:.1f}" for c in columns) + " |", flush=True)


if __name__ == "__main__":
    main()
