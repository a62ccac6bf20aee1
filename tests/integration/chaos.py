"""A seeded chaos run of replicas on several hosts, and the checker of what they did.

Replicas are hosts in network namespaces (:mod:`tests.integration.netns`), with their own
outboxes and one FILES_ROOT; the series store is a private redis-server (append-only
file, fsync always) on the store network, LONK goes to a private nats-server there too.

The workload, from one seed: rounds of series, each of 1 to ``max_instances`` tiny MR
instances, split at random over ``associations`` concurrent associations (each to a
random replica, its instances of several series interleaved file by file). A series
belongs to one round, so its associations overlap in time and no re-push can happen.
Meanwhile, also from the seed: SIGKILL of a replica (restarted on its outbox after up to
a lease: the replica coming back), SIGSTOP for less than a lease then SIGCONT, restarts
of the store (SIGTERM, then from its append-only file).

The checker, once every replica is back and every series registered (or a deadline):
for every series of which at least one instance was acknowledged, across every outbox,
exactly one registration, whose ``ndicom`` is the files in its folder and at least the
instances acknowledged; on its NATS subject exactly one *done*, after a final progress
equal to that ``ndicom``, and progress counts that never go backwards.

Used by tests/integration/test_replicas_chaos.py (short) and benches/replicas_chaos.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats

from oxidicom.notify.journal import count_series_files
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.netns import Host, Network
from tests.integration.raw_peer import EXPLICIT_LE, MR_STORAGE, RawPeer, associate_rq, dataset_of
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.redis_server import RedisServer, free_port
from tests.integration.services import decode_lonk

CALLING = "CHAOS"
ROOT_SUBJECT = "chaos"
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
_SERIES_STEM = "1.2.826.0.1.3680043.8.498.91."
_SOP_STEM = "1.2.826.0.1.3680043.8.498.92."
_BASE = 10_000_000


@dataclass
class ChaosConfig:
    seed: int
    rounds: int
    series_per_round: int
    max_instances: int = 12
    associations: int = 16
    replicas: int = 3
    lease: float = 4.0
    settle: float = 1.0
    #: Chances per round of each fault.
    kill: float = 0.3
    pause: float = 0.3
    store_restart: float = 0.2
    #: When in the round a fault strikes (s after its associations start).
    strike: float = 0.1
    #: Longest SIGSTOP (s). A replica paused longer than the settle interval holds files
    #: sent to it in its socket buffer past the series' quiet time: the workload paused,
    #: as far as the receivers can tell, and the re-push case follows (reported apart).
    max_pause: float = 0.8
    #: Environment of every replica on top of the run's (to check the checker: with
    #: OXIDICOM_SERIES_STORE=none it must find anomalies).
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class ChaosReport:
    series: int = 0
    instances_acknowledged: int = 0
    associations: int = 0
    associations_cut: int = 0
    kills: int = 0
    pauses: int = 0
    store_restarts: int = 0
    registrations: int = 0
    seconds: float = 0.0
    anomalies: list[str] = field(default_factory=list)
    #: Series of a round where a replica was paused longer than the settle interval,
    #: registered more than once, the last time whole: the documented re-push case.
    repushed: list[str] = field(default_factory=list)
    #: LONK messages lost with a SIGKILLed replica (they are not persisted, as on one
    #: host): the *done* of a series it had just registered, or a progress it was sending
    #: (the store counted it as sent: the final progress, not higher, is left out).
    lonk_lost: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"series with acknowledged instances: {self.series}",
            f"instances acknowledged: {self.instances_acknowledged}",
            f"associations: {self.associations} ({self.associations_cut} cut by a fault)",
            f"faults: {self.kills} SIGKILL, {self.pauses} SIGSTOP/SIGCONT,"
            f" {self.store_restarts} store restarts",
            f"registrations checked: {self.registrations}",
            f"re-push after a pause longer than the settle interval: {len(self.repushed)}",
            f"LONK done or final progress lost with a SIGKILLed replica: {len(self.lonk_lost)}",
            f"anomalies: {len(self.anomalies)}",
            *(f"  {a}" for a in self.anomalies[:50]),
            f"wall time: {self.seconds:.0f} s",
        ]


def _uid(stem: str, number: int) -> str:
    return f"{stem}{_BASE + number}"


class _Instances:
    """Tiny MR instances made by rewriting the UIDs of one template."""

    def __init__(self) -> None:
        ds = mr_instance(
            rows=4,
            columns=4,
            series_uid=_uid(_SERIES_STEM, 0),
            SOPInstanceUID=_uid(_SOP_STEM, 0),
        )
        buffer = io.BytesIO()
        write_part10(ds, buffer)  # type: ignore[arg-type]
        self._template = dataset_of(buffer.getvalue())

    def make(self, series: int, sop: int) -> tuple[str, bytes]:
        uid = _uid(_SOP_STEM, sop)
        data = self._template.replace(
            _uid(_SERIES_STEM, 0).encode(), _uid(_SERIES_STEM, series).encode()
        )
        return uid, data.replace(_uid(_SOP_STEM, 0).encode(), uid.encode())


@dataclass
class _Replica:
    host: Host
    outbox: Path
    receiver: RunningReceiver | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Every run of it (a killed one is started again), for the logs.
    runs: list[RunningReceiver] = field(default_factory=list)
    killed_at: list[float] = field(default_factory=list)


class _NatsServer:
    def __init__(self, host: str) -> None:
        self.host, self.port = host, free_port()
        self.process = subprocess.Popen(
            [NATS_SERVER, "-a", host, "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Chaos:
    """One run: the cluster, the workload, the faults, the checker."""

    def __init__(self, config: ChaosConfig, tmp: Path, net: Network, store: RedisServer) -> None:
        self.config = config
        self.tmp = tmp
        self.net = net
        self.store = store
        self.rng = random.Random(config.seed)
        self.report = ChaosReport()
        self.replicas: list[_Replica] = []
        self.acked: Counter[str] = Counter()
        self._acked_lock = threading.Lock()
        self.messages: dict[str, list[str]] = defaultdict(list)
        self._instances = _Instances()
        self._nats: _NatsServer | None = None
        self._long_pause_rounds: set[int] = set()
        self._kill_rounds: set[int] = set()
        self._round_of: dict[str, int] = {}

    # -- the cluster ---------------------------------------------------------------------

    def _env(self, replica: _Replica) -> dict[str, str]:
        assert self._nats is not None
        return {
            "OXIDICOM_FILES_ROOT": str(self.tmp / "files"),
            "OXIDICOM_OUTBOX_DIR": str(replica.outbox),
            "OXIDICOM_LISTENER_ADDRESS": "0.0.0.0",
            "OXIDICOM_LISTENER_THREADS": str(self.config.associations + 4),
            "OXIDICOM_SERIES_STORE": self.store.url,
            "OXIDICOM_SERIES_SETTLE": f"{round(self.config.settle * 1000)}ms",
            "OXIDICOM_SERIES_LEASE": f"{round(self.config.lease * 1000)}ms",
            "OXIDICOM_NATS_ADDRESS": self._nats.url,
            "OXIDICOM_ROOT_SUBJECT": ROOT_SUBJECT,
            "OXIDICOM_PROGRESS_INTERVAL": "0s",
            "OXIDICOM_LOG_LEVEL": "INFO",
        } | self.config.extra_env

    def _start(self, replica: _Replica) -> None:
        folder = self.tmp / replica.host.name
        receiver = start_receiver(
            folder, self._env(replica), command=replica.host.receiver_command()
        )
        receiver.wait_for_log(r"listening on")
        replica.receiver = receiver
        replica.runs.append(receiver)

    def _kill_and_return(self, replica: _Replica, delay: float) -> None:
        with replica.lock:
            receiver = replica.receiver
            if receiver is None or receiver.process.poll() is not None:
                return
            receiver.kill9()
            self.report.kills += 1
            replica.killed_at.append(time.time())
        time.sleep(delay)  # the fault's own duration: how long the replica stays dead
        with replica.lock:
            self._start(replica)

    def _pause(self, replica: _Replica, seconds: float) -> None:
        with replica.lock:
            receiver = replica.receiver
            if receiver is None or receiver.process.poll() is not None:
                return
            receiver.signal_all(signal.SIGSTOP)
            self.report.pauses += 1
            time.sleep(seconds)  # the fault's own duration
            receiver.signal_all(signal.SIGCONT)

    def _restart_store(self) -> None:
        self.store.restart()
        self.report.store_restarts += 1

    # -- the workload --------------------------------------------------------------------

    def _association(self, replica: _Replica, items: list[tuple[int, str, bytes]]) -> None:
        receiver = replica.receiver
        if receiver is None:
            return
        acked: Counter[str] = Counter()
        try:
            with RawPeer.connect(receiver.port, host=replica.host.address) as peer:
                peer.sock.settimeout(max(30.0, self.config.lease * 3))
                peer.associate(associate_rq(CALLING, contexts=((MR_STORAGE, EXPLICIT_LE),)))
                for number, (series, uid, data) in enumerate(items, 1):
                    status = peer.c_store(data, uid, message_id=number % 65535 + 1)
                    if status != 0:
                        raise AssertionError(f"status {status:04X}")
                    acked[_uid(_SERIES_STEM, series)] += 1
                peer.release()
        except (OSError, AssertionError, ValueError):
            self.report.associations_cut += 1
        finally:
            with self._acked_lock:
                self.acked.update(acked)
                self.report.associations += 1

    def _round(self, index: int, pool: ThreadPoolExecutor) -> None:
        config, rng = self.config, self.rng
        first = index * config.series_per_round
        plans: list[list[tuple[int, str, bytes]]] = [[] for _ in range(config.associations)]
        sop = first * config.max_instances
        for series in range(first, first + config.series_per_round):
            parts = rng.sample(range(config.associations), rng.randint(1, 4))
            for _ in range(rng.randint(1, config.max_instances)):
                sop += 1
                uid, data = self._instances.make(series + 1, sop)
                self._round_of[_uid(_SERIES_STEM, series + 1)] = index
                plans[rng.choice(parts)].append((series + 1, uid, data))
        for plan in plans:
            rng.shuffle(plan)  # series interleaved file by file
        targets = [rng.choice(self.replicas) for _ in plans]
        # Each fault at a random moment of the round's start, while associations run.
        faults: list[threading.Timer] = []
        if rng.random() < config.kill:
            victim, delay = rng.choice(self.replicas), rng.uniform(0, config.lease)
            self._kill_rounds.add(index)
            faults.append(
                threading.Timer(
                    rng.uniform(0, config.strike), self._kill_and_return, (victim, delay)
                )
            )
        if rng.random() < config.pause:
            victim, seconds = rng.choice(self.replicas), rng.uniform(0.1, config.max_pause)
            if seconds > config.settle:
                self._long_pause_rounds.add(index)
            faults.append(
                threading.Timer(rng.uniform(0, config.strike), self._pause, (victim, seconds))
            )
        if rng.random() < config.store_restart:
            faults.append(threading.Timer(rng.uniform(0, config.strike), self._restart_store))
        sends = [
            pool.submit(self._association, target, plan)
            for target, plan in zip(targets, plans, strict=True)
            if plan
        ]
        for fault in faults:
            fault.start()
        for send in sends:
            send.result()
        for fault in faults:
            fault.join()

    # -- the run -------------------------------------------------------------------------

    async def run(self) -> ChaosReport:
        started = time.monotonic()
        self._nats = _NatsServer(self.net.store_address)
        client = None
        try:
            for _ in range(50):
                with contextlib.suppress(Exception):
                    client = await nats.connect(self._nats.url, connect_timeout=1)
                    break
                await asyncio.sleep(0.1)  # the server starting: no event to await
            assert client is not None, "nats-server does not answer"

            async def received(message: Any) -> None:
                self.messages[message.subject].append(decode_lonk(message.data))

            await client.subscribe(f"{ROOT_SUBJECT}.>", cb=received)
            for _ in range(self.config.replicas):
                host = self.net.add_host()
                self.replicas.append(_Replica(host, self.tmp / host.name / "outbox"))
            await asyncio.gather(*(asyncio.to_thread(self._start, r) for r in self.replicas))
            with ThreadPoolExecutor(self.config.associations) as pool:
                for index in range(self.config.rounds):
                    await asyncio.to_thread(self._round, index, pool)
            await self._wait_until_registered()
            for replica in self.replicas:
                if replica.receiver is not None:
                    await asyncio.to_thread(replica.receiver.stop)
            await client.flush()
            await asyncio.sleep(0.5)  # LONK messages of the stops still in flight to us
            self._check()
            if self.report.anomalies:
                self._write_logs()
        except BaseException:
            self._write_logs()
            raise
        finally:
            if client is not None:
                await client.close()
            for replica in self.replicas:
                if replica.receiver is not None and replica.receiver.process.poll() is None:
                    replica.receiver.process.kill()
            self._nats.stop()
        self.report.seconds = time.monotonic() - started
        return self.report

    def _write_logs(self) -> None:
        """What each run of each replica said, beside its outbox."""
        for replica in self.replicas:
            logs = [f"--- run {n}\n{run.log()}" for n, run in enumerate(replica.runs)]
            with contextlib.suppress(OSError):
                (self.tmp / replica.host.name / "receiver.log").write_text("\n".join(logs))

    def _registrations(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for replica in self.replicas:
            if not replica.outbox.exists():
                continue
            for path in sorted(replica.outbox.glob("*.json")):
                with contextlib.suppress(OSError, ValueError):
                    document = json.loads(path.read_text())
                    kwargs = document["kwargs"] | {
                        "_created": document["created"],
                        "_killed_after": any(
                            0 <= at - int(path.name.split("-", 1)[0]) / 1e9 < 1.0
                            for at in replica.killed_at
                        ),
                    }
                    found[kwargs["SeriesInstanceUID"]].append(kwargs)
        return found

    async def _wait_until_registered(self) -> None:
        # Dead holders lapse after a lease, the sweep adds half a lease and a period;
        # a store restart adds its grace: a deadline well past all of them.
        deadline = time.monotonic() + 4 * self.config.lease + 30
        while time.monotonic() < deadline:
            registered = self._registrations()
            if all(uid in registered for uid in self.acked):
                return
            await asyncio.sleep(0.5)  # outbox files appear: polled, with a deadline

    def _check(self) -> None:
        report = self.report
        registered = self._registrations()
        report.series = len(self.acked)
        report.instances_acknowledged = sum(self.acked.values())
        report.registrations = sum(len(v) for v in registered.values())
        for uid, acked in sorted(self.acked.items()):
            registrations = registered.get(uid, [])
            if not registrations:
                report.anomalies.append(f"{uid}: {acked} acknowledged, never registered")
                continue
            folder = self.tmp / "files" / registrations[0]["path"]
            files = count_series_files(folder)
            counts = [r["ndicom"] for r in sorted(registrations, key=lambda r: r["_created"])]
            if (
                self._round_of.get(uid) in self._long_pause_rounds
                and len(counts) > 1
                and counts[-1] == files
            ):
                report.repushed.append(f"{uid}: {counts}")
                continue
            if len(counts) > 1:
                report.anomalies.append(f"{uid}: registered {len(counts)} times: {counts}")
            if counts[0] != files or files < acked:
                report.anomalies.append(
                    f"{uid}: first registration {counts[0]}, folder {files}, acked {acked}"
                )
            subject = f"{ROOT_SUBJECT}.{CALLING}.{uid.replace('.', '_')}"
            messages = self.messages.get(subject, [])
            if "done" not in messages and registrations[0]["_killed_after"]:
                report.lonk_lost.append(uid)
            elif messages.count("done") != 1 or messages[-1] != "done":
                report.anomalies.append(
                    f"{uid}: LONK {messages.count('done')} done, ends {messages[-3:]}"
                )
            elif messages[-2:-1] != [str(files)] and self._round_of.get(uid) in self._kill_rounds:
                # A progress the store counted as sent, lost in the SIGKILLed replica that
                # was sending it: the final one, no higher, was then left out.
                report.lonk_lost.append(uid)
            elif messages[-2:-1] != [str(files)]:
                report.anomalies.append(
                    f"{uid}: last progress before done {messages[-2:-1]}, ndicom {files}"
                )
            progress = [int(m) for m in messages if m.isdigit()]
            if progress != sorted(progress):
                report.anomalies.append(f"{uid}: progress goes backwards: {progress}")


@contextlib.contextmanager
def chaos_cluster(tmp: Path) -> Iterator[tuple[Network, RedisServer]]:
    """A store network and a persisted store on it (hosts are added by the run)."""
    from tests.integration.netns import network
    from tests.integration.redis_server import redis_server

    with (
        network() as net,
        redis_server(tmp / "redis", persist=True, host=net.store_address) as store,
    ):
        yield net, store
