"""Slow or stalled peers hold every association slot: does a real storescu get in?

``--mode trickle``: as many raw peers as slots associate, then each sends a tiny
P-DATA-TF (a 2-byte command fragment) every 0.5 s, which keeps the idle timeout away.
``--mode stalled``: the peers associate and then send nothing.
``--mode drain``: the peers, from another loopback address (127.0.0.2, another host to
the receiver), each start a C-STORE that is refused at once (A900: the command names
another instance than the data set) and keep sending its data set at ``--rate`` bytes/s
(default 8.5 KiB/s, above the minimum rate), read and thrown away by the receiver.
Either way, once all slots are held, dcmtk's storescu (from 127.0.0.1) sends one file;
prints its outcome and how long it took.
``--mode churn`` (issue 24): as many raw peers as slots, from 127.0.0.2, each holds an
association for ``--hold`` seconds (1.5, less than the grace period of the rate rule),
sending nothing, releases it and asks again at once. storescu tries to send one file
every ``--interval`` seconds for ``--duration`` seconds during the attack, then
``--after`` times once it has stopped; prints how many tries were admitted.

    .venv/bin/python -m benches.slow_peers --mode trickle --slots 8
    .venv/bin/python -m benches.slow_peers --mode stalled --slots 50
    .venv/bin/python -m benches.slow_peers --mode drain --slots 8
    .venv/bin/python -m benches.slow_peers --mode churn --slots 8
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from benches._receiver import start_receiver
from oxidicom.dimse.commands import CommandField, encode_request
from tests.integration.churning_peers import ChurningPeers
from tests.integration.raw_peer import MR_STORAGE, RawPeer, associate_rq, pdata
from tests.integration.test_hostile import STORE_CONTEXTS, instance_bytes

SAMPLE = sorted(Path("/work/shared/data/SAG-anon").glob("*.dcm"))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode", choices=("trickle", "stalled", "drain", "churn"), default="trickle"
    )
    parser.add_argument("--rate", type=int, default=8704, help="drain: bytes/s per peer")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--wait", type=float, default=12, help="seconds before storescu")
    parser.add_argument("--file", type=Path, default=SAMPLE)
    parser.add_argument("--hold", type=float, default=1.5, help="churn: seconds per association")
    parser.add_argument("--duration", type=float, default=22, help="churn: seconds of tries")
    parser.add_argument("--interval", type=float, default=0.5, help="churn: between tries")
    parser.add_argument("--after", type=int, default=10, help="churn: tries after the attack")
    args = parser.parse_args()
    if args.mode == "churn":
        churn(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        receiver = start_receiver(
            Path(tmp),
            {"OXIDICOM_LISTENER_THREADS": str(args.slots), "OXIDICOM_IDLE_TIMEOUT": "120s"},
        )
        source = "127.0.0.2" if args.mode == "drain" else None
        peers = [RawPeer.connect(receiver.port, source) for _ in range(args.slots)]
        stop = threading.Event()
        try:
            for peer in peers:
                if args.mode == "drain":
                    peer.associate(associate_rq(contexts=STORE_CONTEXTS))
                    peer.send(_refused_store())
                else:
                    peer.associate()
            tiny = pdata(1, True, False, b"\x00\x00")
            drip = pdata(3, False, False, b"\0" * (args.rate // 2))

            def trickle() -> None:
                while not stop.wait(0.5):
                    for peer in peers:
                        with contextlib.suppress(OSError):
                            peer.send(drip if args.mode == "drain" else tiny)

            if args.mode != "stalled":
                threading.Thread(target=trickle, daemon=True).start()
            time.sleep(args.wait)  # the peers' age: the attack being measured
            started = time.monotonic()
            result = _storescu(receiver.port, args.file)
            took = time.monotonic() - started
            outcome = "success" if result.returncode == 0 and not result.stderr else "failed"
            print(
                f"{args.mode}, {args.slots} slots held: storescu {outcome} (exit"
                f" {result.returncode}) after {took:.2f} s; files stored:"
                f" {len(receiver.stored_files())}"
            )
            if result.stderr:
                print(result.stderr.strip().splitlines()[-1])
            preempted = re.findall(r"association from \S+ preempted: .*", receiver.log())
            print(f"{len(preempted)} preempted", *preempted[:1], sep="; ")
        finally:
            stop.set()
            for peer in peers:
                peer.close()
            receiver.stop()


def churn(args: argparse.Namespace) -> None:
    """storescu's tries while one address churns young associations through every slot."""
    with tempfile.TemporaryDirectory() as tmp:
        receiver = start_receiver(
            Path(tmp),
            {"OXIDICOM_LISTENER_THREADS": str(args.slots), "OXIDICOM_IDLE_TIMEOUT": "120s"},
        )
        try:
            attack = ChurningPeers(receiver.port, args.slots, "127.0.0.2", args.hold)
            try:
                attack.wait_until_all_hold()
                during = _tries(receiver.port, args.file, args.duration, args.interval)
            finally:
                attack.close()
            after = _tries(receiver.port, args.file, float("inf"), args.interval, args.after)
        finally:
            receiver.stop()  # the last summarized rejections are logged at shutdown
        log = receiver.log()
    rejected = Counter(re.findall(r"association from \S+ rejected: ([a-z ]+)", log))
    summarized = re.findall(r"rejected (\d+) more association\(s\) \((\w+)", log)
    for count, reason in summarized:
        rejected[reason.replace("_", " ")] += int(count)
    print(
        f"churn, {args.slots} slots, each held {args.hold} s from 127.0.0.2:"
        f" storescu admitted {sum(during)}/{len(during)} during the attack,"
        f" {sum(after)}/{len(after)} after"
    )
    print(
        f"attack: {attack.accepted} associations accepted, {attack.rejected} rejected,"
        f" {attack.preempted} preempted; the receiver's rejections: {dict(rejected)}"
    )


def _tries(
    port: int, file: Path, duration: float, interval: float, limit: int | None = None
) -> list[bool]:
    """storescu every ``interval`` s for ``duration`` s (or ``limit`` times): admitted?"""
    outcomes: list[bool] = []
    end = time.monotonic() + duration
    while time.monotonic() < end and (limit is None or len(outcomes) < limit):
        started = time.monotonic()
        result = _storescu(port, file)
        outcomes.append(result.returncode == 0 and "Association Rejected" not in result.stderr)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return outcomes


def _storescu(port: int, file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/usr/bin/storescu", "-aec", "ChRIS", "127.0.0.1", str(port), str(file)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TCP_NODELAY": "1"},
    )


def _refused_store() -> bytes:
    """A C-STORE-RQ naming another instance than its data set (A900), and that data set
    without its last fragment: the receiver reads and discards the rest until it ends."""
    uid, dataset = instance_bytes()
    command = encode_request(
        CommandField.C_STORE_RQ,
        1,
        affected_sop_class_uid=MR_STORAGE,
        affected_sop_instance_uid=f"{uid}.999",
        has_dataset=True,
        priority=0,
    )
    return pdata(3, True, True, command) + pdata(3, False, False, dataset)


if __name__ == "__main__":
    main()
