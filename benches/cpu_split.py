"""Each side's user and system CPU per instance, and the TCP segments, while C ``storescu``
flood one receiver of the flood's table.

The flood's table gives each side's CPU per instance; this splits it into user and
system time, for the receiver's process tree with the children it reaped (the flood's
reading, before and after) and for the senders (their ``rusage``), and counts the TCP
segments per instance (``nstat``:
loopback counts each segment once on each side's counters, so ``TcpOutSegs`` is every
segment). ``--env KEY=VALUE`` changes one setting of the receiver; run the receivers
alternately, a few times each, and compare the spread::

    python benches/cpu_split.py --receiver oxidicom --dataset ct --senders 4 --passes 6
    python benches/cpu_split.py --receiver oxidicom --env OXIDICOM_SCP_MAX_PDU_LENGTH=32768
    python benches/cpu_split.py --receiver storescp-fork-B

On a virtual machine without a PMU, ``perf``'s samples land where interrupts come back on,
and ``py-spy`` stops the receiver at system calls: these counts are the ones to trust
there (benches/results/i21-speed.md, tenth session).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository

from benches.flood.datasets import load
from benches.flood.procs import tree_cpu_times
from benches.flood.receivers import RECEIVERS, Receiver, with_env
from benches.flood.run import DEFAULT_DATA
from benches.flood.serving import serving, start_senders

#: nstat counters printed (per instance).
SEGMENT_COUNTERS = ("TcpOutSegs", "TcpExtTCPOrigDataSent", "TcpExtTCPPureAcks")


def segments() -> dict[str, int]:
    """The TCP counters since the previous call (``nstat`` keeps its own history)."""
    counters = {}
    for line in subprocess.run(["nstat"], capture_output=True, text=True).stdout.splitlines():
        name, *rest = line.split()
        if rest and rest[0].isdigit():
            counters[name] = int(rest[0])
    return counters


def measure(receiver: Receiver, dataset: str, senders: int, passes: int) -> str:
    files = [str(f.path) for f in load(dataset, DEFAULT_DATA).files]
    count = len(files) // senders * senders * passes
    with (
        tempfile.TemporaryDirectory(dir="/dev/shm") as folder,
        serving(receiver, Path(folder)) as (process, port),
    ):
        before = tree_cpu_times(process.pid)
        segments()
        started = time.perf_counter()
        running = start_senders(receiver, port, files, senders, passes)
        usage = [os.wait4(sender.pid, 0) for sender in running]
        wall = time.perf_counter() - started
        if any(status for _, status, _ in usage):
            raise SystemExit("a storescu failed")
        counted = segments()
        time.sleep(0.3)  # let the receiver finish its last answers before its CPU is read
        after = tree_cpu_times(process.pid)
    per = 1e6 / count
    sent_user = sum(u.ru_utime for _, _, u in usage) * per
    sent_system = sum(u.ru_stime for _, _, u in usage) * per
    lines = [
        f"{receiver.name}, {dataset}, C={senders}, {count} instances; per instance:",
        f"  wall {wall * per:.0f} µs",
        f"  receiver: user {(after[0] - before[0]) * per:.0f} µs,"
        f" system {(after[1] - before[1]) * per:.0f} µs",
        f"  senders: user {sent_user:.0f} µs, system {sent_system:.0f} µs",
    ]
    lines += [f"  {name}: {counted.get(name, 0) / count:.2f}" for name in SEGMENT_COUNTERS]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receiver", default="oxidicom", choices=sorted(RECEIVERS))
    parser.add_argument("--dataset", default="ct")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--passes", type=int, default=6, help="each sender sends its share")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    receiver = with_env(RECEIVERS[args.receiver], extra)
    print(measure(receiver, args.dataset, args.senders, args.passes))


if __name__ == "__main__":
    main()
