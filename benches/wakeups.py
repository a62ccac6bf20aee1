"""Wake-ups and CPU per instance of one receiver process: oxidicom against dcmtk's.

One dcmtk ``storescu`` (``TCP_NODELAY=1``) sends a flood data set ``--passes`` times in
one association to oxidicom in one process (the flood's ``oxidicom-workers1``) or to
dcmtk's ``storescp +B`` (``storescp-B``: one process, writing the data set's bytes as they
come, as the flood's baseline does in each child); the receiver's context switches
(``/proc/PID/status``) and user and system CPU (``/proc/PID/stat``) over the sending, per
instance::

    python benches/wakeups.py --receiver oxidicom
    python benches/wakeups.py --receiver storescp --dataset real

A voluntary switch is a wake-up after waiting for data; an involuntary one, a preemption.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository

from benches.flood.datasets import load
from benches.flood.receivers import RECEIVERS
from benches.flood.serving import serving

TICKS = os.sysconf("SC_CLK_TCK")


def _counters(pid: int) -> tuple[int, int, float, float]:
    """Voluntary and involuntary context switches, user and system CPU seconds."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    switches = {k: int(v) for k, v in (line.split(":") for line in status if "ctxt" in line)}
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (
        switches["voluntary_ctxt_switches"],
        switches["nonvoluntary_ctxt_switches"],
        int(fields[11]) / TICKS,
        int(fields[12]) / TICKS,
    )


#: What --receiver names: one receiving process each, so that its /proc counts it all.
RECEIVING_PROCESS = {"oxidicom": "oxidicom-workers1", "storescp": "storescp-B"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receiver", choices=("oxidicom", "storescp"), default="oxidicom")
    parser.add_argument("--dataset", default="small")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path("/dev/shm/oxidicom-bench-data"))
    args = parser.parse_args()
    files = [str(f.path) for f in load(args.dataset, args.data_dir).files]
    receiver = RECEIVERS[RECEIVING_PROCESS[args.receiver]]
    with (
        tempfile.TemporaryDirectory(dir="/dev/shm") as folder,
        serving(receiver, Path(folder)) as (process, port),
    ):
        before = _counters(process.pid)
        send = ["storescu", "-aec", receiver.aet, "127.0.0.1", str(port), *files * args.passes]
        subprocess.run(send, env={**os.environ, "TCP_NODELAY": "1"}, check=True)
        after = _counters(process.pid)
    count = len(files) * args.passes
    voluntary, involuntary, user, system = (b - a for a, b in zip(before, after, strict=True))
    print(
        f"{args.receiver}, {args.dataset}, {count} instances, per instance:"
        f" {voluntary / count:.2f} voluntary and {involuntary / count:.2f} involuntary"
        f" switches, user {user / count * 1e6:.1f} µs, system {system / count * 1e6:.1f} µs"
    )


if __name__ == "__main__":
    main()
