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

    .venv/bin/python -m benches.slow_peers --mode trickle --slots 8
    .venv/bin/python -m benches.slow_peers --mode stalled --slots 50
    .venv/bin/python -m benches.slow_peers --mode drain --slots 8
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
from pathlib import Path

from benches._receiver import start_receiver
from oxidicom.dimse.commands import CommandField, encode_request
from tests.integration.raw_peer import MR_STORAGE, RawPeer, associate_rq, pdata
from tests.integration.test_hostile import STORE_CONTEXTS, instance_bytes

SAMPLE = sorted(Path("/work/shared/data/SAG-anon").glob("*.dcm"))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("trickle", "stalled", "drain"), default="trickle")
    parser.add_argument("--rate", type=int, default=8704, help="drain: bytes/s per peer")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--wait", type=float, default=12, help="seconds before storescu")
    parser.add_argument("--file", type=Path, default=SAMPLE)
    args = parser.parse_args()
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
            result = subprocess.run(
                [
                    "/usr/bin/storescu",
                    "-aec",
                    "ChRIS",
                    "127.0.0.1",
                    str(receiver.port),
                    str(args.file),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "TCP_NODELAY": "1"},
            )
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
