"""Slow or stalled peers hold every association slot: does a real storescu get in?

``--mode trickle``: as many raw peers as slots associate, then each sends a tiny
P-DATA-TF (a 2-byte command fragment) every 0.5 s, which keeps the idle timeout away.
``--mode stalled``: the peers associate and then send nothing. Either way, once all
slots are held, dcmtk's storescu sends one file; prints its outcome and how long it took.

    .venv/bin/python -m benches.slow_peers --mode trickle --slots 8
    .venv/bin/python -m benches.slow_peers --mode stalled --slots 50
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from benches._receiver import start_receiver
from tests.integration.raw_peer import RawPeer, pdata

SAMPLE = sorted(Path("/work/shared/data/SAG-anon").glob("*.dcm"))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("trickle", "stalled"), default="trickle")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--wait", type=float, default=12, help="seconds before storescu")
    parser.add_argument("--file", type=Path, default=SAMPLE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        receiver = start_receiver(
            Path(tmp),
            {"OXIDICOM_LISTENER_THREADS": str(args.slots), "OXIDICOM_IDLE_TIMEOUT": "120s"},
        )
        peers = [RawPeer.connect(receiver.port) for _ in range(args.slots)]
        stop = threading.Event()
        try:
            for peer in peers:
                peer.associate()

            def trickle() -> None:
                while not stop.wait(0.5):
                    for peer in peers:
                        with contextlib.suppress(OSError):
                            peer.send(pdata(1, True, False, b"\x00\x00"))

            if args.mode == "trickle":
                threading.Thread(target=trickle, daemon=True).start()
            time.sleep(args.wait)  # the peers' age: the attack being measured
            started = time.monotonic()
            result = subprocess.run(
                ["storescu", "-aec", "ChRIS", "127.0.0.1", str(receiver.port), str(args.file)],
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
        finally:
            stop.set()
            for peer in peers:
                peer.close()
            receiver.stop()


if __name__ == "__main__":
    main()
