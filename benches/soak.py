"""Soak: many associations over minutes; do memory and open descriptors come back?

    .venv/bin/python benches/soak.py --minutes 5
    .venv/bin/python benches/soak.py --minutes 5 --notify   # with RabbitMQ and NATS

Runs the real receiver and, for ``--minutes``, three kinds of clients at once, all on
127.0.0.1: dcmtk storescu processes (one association of ``--files`` small instances
each), pynetdicom associations (C-ECHO plus a few C-STOREs, some aborted mid-way) and
hostile raw connections (garbage, truncated PDUs, idle connections, aborts inside a data
set). It samples the receiver's RSS (/proc/<pid>/status VmRSS) and open descriptors
(/proc/<pid>/fd) before (after one warm-up association), every ``--every`` seconds
during, and after the clients stop, and says whether both returned to their baseline.
Descriptors are counted all together and by kind (sockets, outbox entries, files under
FILES_ROOT, other), so that a leak of outbox claims or of broker connections shows.

``--notify`` configures RabbitMQ (``--amqp``, a queue of the run's own, deleted at the end)
and NATS (``--nats``, a root subject of the run's own): every association's series is
registered through the outbox and gets LONK progress. At the end it checks that the
outbox is empty and that the queue holds one message per finished series.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from _receiver import RunningReceiver, start_receiver
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage
from pynetdicom import AE

from oxidicom.dimse.commands import CommandField, encode_request
from oxidicom.ul import pdu as ul
from tests.dicom_factory import mr_instance, with_transfer_syntax, write_part10
from tests.integration.pynetdicom_scu import scu_only
from tests.integration.raw_peer import (
    EXPLICIT_LE,
    MR_STORAGE,
    RawPeer,
    associate_rq,
    dataset_of,
    message,
)
from tests.ul._helpers import split_pdus

STORESCU = "/usr/bin/storescu"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_kinds(pid: int, outbox: Path, files_root: Path) -> Counter[str]:
    """Open descriptors by what they point at: socket, outbox, files, other."""
    kinds: Counter[str] = Counter()
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:"):
            kinds["socket"] += 1
        elif target.startswith(str(outbox)):
            kinds["outbox"] += 1
        elif target.startswith(str(files_root)):
            kinds["files"] += 1
        else:
            kinds["other"] += 1
    return kinds


def describe_kinds(kinds: Counter[str]) -> str:
    return " ".join(f"{k} {kinds[k]}" for k in ("socket", "outbox", "files", "other"))


def queue_depth(amqp: str, queue: str) -> int:
    """Messages waiting in ``queue`` (a passive declaration)."""
    from kombu import Connection

    with Connection(amqp) as connection:
        return int(connection.channel().queue_declare(queue, passive=True).message_count)


def delete_queue(amqp: str, queue: str) -> None:
    """Remove the run's queue and its exchange (the broker is shared)."""
    from kombu import Connection

    with Connection(amqp) as connection:
        channel = connection.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)


class Soak:
    def __init__(self, port: int, files: list[Path], deadline: float) -> None:
        self.port = port
        self.files = files
        self.deadline = deadline
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()
        ds = mr_instance(rows=32, columns=32)
        buffer = io.BytesIO()
        write_part10(ds, buffer)  # type: ignore[arg-type]
        self.raw_uid, self.raw_dataset = str(ds.SOPInstanceUID), dataset_of(buffer.getvalue())

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def storescu_loop(self, index: int) -> None:
        while self.running():
            result = subprocess.run(
                [STORESCU, "-aet", f"SOAK{index}", "-aec", "ChRIS", "127.0.0.1", str(self.port)]
                + [str(f) for f in self.files],
                env={**os.environ, "TCP_NODELAY": "1"},
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if result.returncode:
                self.errors.append(f"storescu: {result.stderr[:300]}")
            self.count("storescu associations")

    def pynetdicom_loop(self) -> None:
        rng = random.Random(1)
        ae = AE(ae_title="SOAKPYNET")
        ae.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
        ae.add_requested_context("1.2.840.10008.1.1")
        while self.running():
            assoc = ae.associate("127.0.0.1", self.port, ae_title="ChRIS")
            if not assoc.is_established:
                self.errors.append("pynetdicom: not established")
                continue
            scu_only(assoc)
            assoc.send_c_echo()
            for n in range(rng.randint(1, 5)):
                ds = with_transfer_syntax(
                    mr_instance(instance_number=n + 1, rows=32, columns=32), ExplicitVRLittleEndian
                )
                status = assoc.send_c_store(ds)
                if "Status" not in status:
                    # pynetdicom gives an empty data set when it got no response.
                    self.errors.append(
                        f"pynetdicom: no C-STORE-RSP for {ds.SOPInstanceUID}"
                        f" (aborted {assoc.is_aborted}, established {assoc.is_established})"
                    )
                    break
                if status.Status != 0:
                    self.errors.append(f"pynetdicom store status {status.Status:04X}")
            if not assoc.is_established:
                continue
            if rng.random() < 0.2:
                assoc.abort()
                self.count("pynetdicom aborts")
            else:
                assoc.release()
            self.count("pynetdicom associations")

    def hostile_loop(self) -> None:
        rng = random.Random(2)
        while self.running():
            kind = rng.choice(["garbage", "truncated", "idle", "abort-in-dataset", "reset"])
            try:
                with RawPeer.connect(self.port) as peer:
                    if kind == "garbage":
                        peer.send(rng.randbytes(rng.randint(1, 4000)))
                        peer.read_until_closed()
                    elif kind == "truncated":
                        peer.send(associate_rq()[: rng.randint(1, 60)])
                        peer.sock.shutdown(socket.SHUT_WR)
                        peer.read_until_closed()
                    elif kind == "idle":
                        pass  # connect and go away without a word
                    elif kind == "reset":
                        peer.sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                        )
                    else:
                        peer.associate(associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
                        command = encode_request(
                            CommandField.C_STORE_RQ,
                            1,
                            affected_sop_class_uid=MR_STORAGE,
                            affected_sop_instance_uid=self.raw_uid,
                            has_dataset=True,
                        )
                        pdus = split_pdus(message(1, command, self.raw_dataset, 1000))
                        peer.send(b"".join(pdus[: len(pdus) // 2]))  # whole PDUs only
                        peer.send(ul.encode(ul.Abort(0, 0)))
                        peer.read_until_closed()
            except OSError:
                pass  # the receiver closing first is the expected outcome
            self.count(f"hostile {kind}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--every", type=float, default=10.0, help="sampling period (s)")
    parser.add_argument("--storescu", type=int, default=2, help="storescu loops at once")
    parser.add_argument("--files", type=int, default=50, help="instances per storescu run")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/oxidicom-soak"))
    parser.add_argument("--log", type=Path, help="write the receiver's and pynetdicom's logs here")
    parser.add_argument(
        "--notify", action="store_true", help="with RabbitMQ and NATS configured (see --amqp)"
    )
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    args = parser.parse_args()
    if args.log:
        logging.basicConfig(
            filename=args.log.with_suffix(".pynetdicom.log"),
            level=logging.WARNING,
            format="%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s",
        )
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="soak-", dir=args.dir))
    files = [
        write_part10(
            mr_instance(instance_number=n + 1, rows=64, columns=64), work / f"src-{n:04d}.dcm"
        )
        for n in range(args.files)
    ]
    env = {
        "OXIDICOM_LOG_LEVEL": "INFO",
        "OXIDICOM_LISTENER_THREADS": "16",
        # Every client is on 127.0.0.1, and together they ask for associations faster
        # than the per-address limit allows at times: what is soaked is the receiver,
        # not that limit (tests/integration/test_fairness.py checks it).
        "OXIDICOM_MAX_ASSOCIATION_RATE": "0",
    }
    queue = f"oxidicom-soak-{uuid.uuid4().hex[:12]}"
    if args.notify:
        env |= {
            "OXIDICOM_AMQP_ADDRESS": args.amqp,
            "OXIDICOM_QUEUE_NAME": queue,
            "OXIDICOM_NATS_ADDRESS": args.nats,
            "OXIDICOM_ROOT_SUBJECT": f"oxisoak{uuid.uuid4().hex[:12]}",
        }
    started: RunningReceiver | None = None
    try:
        started = start_receiver(work / "run", env)
        if args.notify:
            started.wait_for_log(r"AMQP connected")
            started.wait_for_log(r"NATS connected")
    except BaseException:
        if started is not None:
            started.stop()
        shutil.rmtree(work)
        raise
    receiver = started
    pid = receiver.process.pid
    outbox, files_root = receiver.outbox_dir.resolve(), receiver.files_root.resolve()
    try:
        # Warm-up: imports, caches and the executor's threads exist after the first use.
        warm = Soak(receiver.port, files, time.monotonic() + 0.1)
        warm.storescu_loop(99)
        time.sleep(1)
        base_rss, base_fds = rss_kib(pid), fds(pid)
        base_kinds = fd_kinds(pid, outbox, files_root)
        print(
            f"baseline: RSS {base_rss / 1024:.1f} MiB, {base_fds} fds"
            f" ({describe_kinds(base_kinds)})"
        )
        soak = Soak(receiver.port, files, time.monotonic() + args.minutes * 60)
        threads = [
            threading.Thread(target=soak.storescu_loop, args=(i,)) for i in range(args.storescu)
        ]
        threads += [
            threading.Thread(target=soak.pynetdicom_loop),
            threading.Thread(target=soak.hostile_loop),
        ]
        for thread in threads:
            thread.start()
        samples: list[tuple[int, int]] = []
        most: Counter[str] = Counter()
        while any(t.is_alive() for t in threads):
            time.sleep(args.every)
            kinds = fd_kinds(pid, outbox, files_root)
            most |= kinds  # per kind, the highest seen
            samples.append((rss_kib(pid), fds(pid)))
            print(
                f"  t+{len(samples) * args.every:4.0f}s RSS {samples[-1][0] / 1024:6.1f} MiB"
                f"  fds {samples[-1][1]:4d} ({describe_kinds(kinds)})",
                flush=True,
            )
        for thread in threads:
            thread.join()
        # After: give the receiver a moment to close what the clients left (Sta13, ARTIM).
        settle = time.monotonic() + 60
        while fds(pid) > base_fds and time.monotonic() < settle:
            time.sleep(0.5)
        if args.notify:
            # The last associations' registrations: published once the broker confirmed.
            settle = time.monotonic() + 60
            while receiver_outbox_depth(receiver) and time.monotonic() < settle:
                time.sleep(0.5)
        after_rss, after_fds = rss_kib(pid), fds(pid)
        after_kinds = fd_kinds(pid, outbox, files_root)
        rss_values = [s[0] for s in samples]
        print(
            f"during: RSS median {statistics.median(rss_values) / 1024:.1f} MiB,"
            f" max {max(rss_values) / 1024:.1f} MiB; fds max {max(s[1] for s in samples)}"
            f" (highest per kind: {describe_kinds(most)})"
        )
        print(
            f"after:  RSS {after_rss / 1024:.1f} MiB, {after_fds} fds"
            f" ({describe_kinds(after_kinds)})"
        )
        print("clients:", dict(sorted(soak.counts.items())))
        stored = len(receiver.stored_files())
        print(f"files stored: {stored}; client errors: {len(soak.errors)} {soak.errors[:3]}")
        problems = Counter(
            line.split("] ", 1)[-1][:90]
            for line in receiver.lines
            if " ERROR " in line or "Traceback" in line or "storing" in line
        )
        print(f"receiver errors: {sum(problems.values())} {problems.most_common(3)}")
        if soak.errors:
            # What the receiver said about the pynetdicom associations that went wrong.
            ids = {
                line.split("[", 1)[1].split("]", 1)[0]
                for line in receiver.lines
                if "association from SOAKPYNET@" in line
            }
            said = [
                line
                for line in receiver.lines
                if "abort" in line
                and any(f"[{i}]" in line for i in ids)
                and "aborted by the peer (source 0, reason 0)" not in line
            ]
            print("receiver on failed pynetdicom associations:", *said[:6], sep="\n  ")
        rss_ok = after_rss <= base_rss * 1.10 + 4096
        fds_ok = after_fds <= base_fds
        print(
            f"RSS back to baseline (within 10% + 4 MiB): {rss_ok}; fds back to baseline: {fds_ok}"
        )
        if args.notify:
            finished = sum(" series finished: " in line for line in receiver.lines)
            sent = sum(" registration sent: " in line for line in receiver.lines)
            depth = queue_depth(args.amqp, queue)
            left = receiver_outbox_depth(receiver)
            print(
                f"registrations: {finished} series finished, {sent} published,"
                f" {depth} in the queue, {left} left in the outbox;"
                f" one per series: {finished == sent == depth and not left}"
            )
    finally:
        code = receiver.stop()
        print(f"receiver exit status: {code}")
        if args.notify:
            print(*[line for line in receiver.lines if "LONK: " in line][-1:])
            delete_queue(args.amqp, queue)
        if args.log:
            args.log.write_text(receiver.log())
        shutil.rmtree(work)


def receiver_outbox_depth(receiver: RunningReceiver) -> int:
    directory = receiver.outbox_dir
    if not directory.exists():
        return 0
    return sum(1 for p in directory.iterdir() if p.name.endswith(".json"))


if __name__ == "__main__":
    main()
