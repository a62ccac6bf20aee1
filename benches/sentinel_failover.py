"""A Redis Sentinel failover of the series store during a push: measured, not asserted.

Redis replication is asynchronous: a write the master acknowledged may not have reached
the replica when the master dies, and the promoted replica never has it. This bench makes
it happen while two receivers share a series: a master, one replica, one redis-sentinel
(quorum 1, down-after 1 s); the receivers reach the store through a TCP proxy that is
pointed at whichever server Sentinel names master (what a Kubernetes Service following
the master, or HAProxy with Sentinel checks, does). Each run:

1. receiver a stores a quarter of SAG-anon (48 files) in an open association;
2. the master is SIGKILLed; the time until Sentinel names the replica master, and until
   the store answers through the proxy again, is measured;
3. receiver b stores the other half (96 files, storescu); a stores its second quarter and
   releases;
4. the registrations in both outboxes are read (no broker: they stay there).

``--lag`` pauses the replica (SIGSTOP) from before a's association until the master is
dead: the promoted replica never got a's hold, as when replication lags at the failover.

    .venv/bin/python -m benches.sentinel_failover --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.redis_server import REDIS_SERVER, free_port
from tests.integration.services import TcpProxy
from tests.integration.test_replicas import open_association, store_more
from tests.sample_data import PACS, SAG_UID

SENTINEL = "/usr/bin/redis-sentinel"
STORESCU = "/usr/bin/storescu"
DATA = Path(os.environ.get("OXIDICOM_SAMPLE_DATA", "/work/shared/data"))


def _server(folder: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    argv += ["--save", "", "--appendonly", "no", *extra]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_ping(port)
    return process


def _wait_ping(port: int, timeout: float = 20.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(redis.RedisError, OSError):
            client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
            try:
                if client.ping():
                    return time.monotonic() - started
            finally:
                client.close()
        time.sleep(0.05)
    raise AssertionError(f"nothing answers on port {port}")


def _sentinel(folder: Path, master_port: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = folder / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
        f"sentinel monitor store 127.0.0.1 {master_port} 1\n"
        "sentinel down-after-milliseconds store 1000\n"
        "sentinel failover-timeout store 5000\n"
    )
    process = subprocess.Popen([SENTINEL, str(conf)], stdout=subprocess.DEVNULL)
    _wait_ping(port)
    return process, port


def _master_port(sentinel_port: int) -> int | None:
    client = redis.Redis(port=sentinel_port, socket_timeout=1)
    try:
        answer = client.execute_command("SENTINEL", "get-master-addr-by-name", "store")
        return int(answer[1]) if answer else None
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def _has_hold(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return bool(client.keys("{oxidicom-series}:s:*"))
    finally:
        client.close()


def _registrations(*receivers: RunningReceiver) -> list[int]:
    found = []
    for receiver in receivers:
        for path in sorted(receiver.outbox_dir.glob("*.json")):
            kwargs = json.loads(path.read_text())["kwargs"]
            if kwargs["SeriesInstanceUID"] == SAG_UID:
                found.append((json.loads(path.read_text())["created"], kwargs["ndicom"]))
    return [n for _, n in sorted(found)]


async def one_run(tmp: Path, lease: str, lag: bool) -> dict[str, object]:
    files = sorted((DATA / "SAG-anon").glob("*.dcm"))
    first, second, other = files[:48], files[48:96], files[96:]
    master_port, replica_port = free_port(), free_port()
    master = _server(tmp / "master", master_port)
    replica = _server(tmp / "replica", replica_port, "--replicaof", "127.0.0.1", str(master_port))
    sentinel, sentinel_port = _sentinel(tmp, master_port)
    proxy = TcpProxy(("127.0.0.1", master_port))
    await proxy.start()
    receivers: list[RunningReceiver] = []
    try:
        for name in ("a", "b"):
            env = {
                "OXIDICOM_FILES_ROOT": str(tmp / "files"),
                "OXIDICOM_OUTBOX_DIR": str(tmp / name / "outbox"),
                "OXIDICOM_SERIES_STORE": f"redis://127.0.0.1:{proxy.port}/0",
                "OXIDICOM_SERIES_SETTLE": "1s",
                "OXIDICOM_SERIES_LEASE": lease,
                "OXIDICOM_LOG_LEVEL": "INFO",
            }
            receivers.append(await asyncio.to_thread(start_receiver, tmp / name, env))
        a, b = receivers
        if lag:  # the replica gets nothing of what follows: a's hold exists on the master only
            replica.send_signal(signal.SIGSTOP)
        assoc = await asyncio.to_thread(open_association, a.port, first, second)
        await asyncio.sleep(0.5)  # a's hold and count reach the master
        killed = time.monotonic()
        master.send_signal(signal.SIGKILL)
        master.wait()
        if lag:
            replica.send_signal(signal.SIGCONT)
        while _master_port(sentinel_port) != replica_port:
            await asyncio.sleep(0.05)
        promoted = time.monotonic() - killed
        replicated = _has_hold(replica_port)  # before any receiver reaches the new master
        await proxy.stop()
        proxy.target = ("127.0.0.1", replica_port)
        await proxy.start()
        await asyncio.to_thread(_wait_ping, proxy.port)
        answering = time.monotonic() - killed
        result = await asyncio.to_thread(
            subprocess.run,
            [STORESCU, "-aet", PACS, "-aec", "ChRIS", "127.0.0.1", str(b.port), *map(str, other)],
            capture_output=True,
        )
        assert result.returncode == 0, result.stderr
        await asyncio.to_thread(store_more, assoc, second)
        await asyncio.to_thread(assoc.release)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(_registrations(a, b)) < 192:
            await asyncio.sleep(0.5)
        for receiver in receivers:
            await asyncio.to_thread(receiver.stop)
        return {
            "promoted_s": round(promoted, 2),
            "store_answers_again_s": round(answering, 2),
            "registrations": _registrations(a, b),
            "a_hold_on_the_promoted_replica": replicated,
            "logs": "\n".join(r.log() for r in receivers),
        }
    finally:
        for receiver in receivers:
            if receiver.process.poll() is None:
                receiver.process.kill()
        await proxy.stop()
        for process in (sentinel, replica, master):
            if process.poll() is None:
                process.terminate()
                process.wait(10)


async def main_async(runs: int, lease: str, lag: bool) -> None:
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="oxidicom-sentinel-") as folder:
            outcome = await one_run(Path(folder), lease, lag)
        logs = str(outcome.pop("logs"))
        lost = logs.count("lost this replica's hold")
        print(f"run {run + 1}: {outcome} holds found lost and sent again: {lost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lease", default="30s")
    parser.add_argument(
        "--lag",
        action="store_true",
        help="the replica is paused while receiver a holds the series: the promoted one"
        " never got a's hold (asynchronous replication at its worst)",
    )
    args = parser.parse_args()
    asyncio.run(main_async(args.runs, args.lease, args.lag))


if __name__ == "__main__":
    main()
