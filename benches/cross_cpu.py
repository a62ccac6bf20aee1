"""What a wake-up costs across CPUs, and how many a receiver makes per instance.

Two measurements behind the flood's ratios on a virtual machine (issue 21):

``pingpong``: two processes hand one byte back and forth through pipes, both on one CPU,
then on two. Across CPUs each hand-over wakes a process whose CPU is idle, which on a
virtual machine means an inter-processor interrupt to a halted virtual CPU::

    python benches/cross_cpu.py pingpong

``flood``: one flood measurement (``--senders`` storescu sending a data set twice to a
fresh receiver of the flood's table, e.g. ``oxidicom`` as shipped or
``storescp-fork-B``), with the whole machine's wake-ups, context switches and
inter-processor interrupts counted by ``perf stat -a`` (root, Debian's linux-perf)::

    python benches/cross_cpu.py flood --receiver oxidicom --dataset ct --senders 4
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository

from benches.flood.datasets import load
from benches.flood.receivers import RECEIVERS, STORESCP
from benches.flood.serving import serving, start_senders

ROUND_TRIPS = 20_000
EVENTS = (
    "sched:sched_wakeup",
    "sched:sched_switch",
    "irq_vectors:reschedule_entry",
    "irq_vectors:call_function_single_entry",
)
TICKS = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU time the whole machine has spent not idle (/proc/stat), in seconds."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, stat.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / TICKS


def pingpong(first_cpu: int, second_cpu: int) -> str:
    """Round trips of one byte between a parent on ``first_cpu`` and a child on
    ``second_cpu``: wall time and each side's CPU per round trip."""
    to_child, from_parent = os.pipe()
    from_child, to_parent = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {second_cpu})
        for _ in range(ROUND_TRIPS):
            os.read(to_child, 1)
            os.write(to_parent, b"x")
        os._exit(0)
    os.sched_setaffinity(0, {first_cpu})
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(ROUND_TRIPS):
        os.write(from_parent, b"x")
        os.read(from_child, 1)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    _, _, child = os.wait4(pid, 0)
    for fd in (to_child, from_parent, from_child, to_parent):
        os.close(fd)
    per = 1e6 / ROUND_TRIPS
    return (
        f"CPUs {first_cpu} and {second_cpu}: {wall * per:.1f} µs per round trip;"
        f" CPU per round trip {cpu * per:.1f} µs (parent),"
        f" {(child.ru_utime + child.ru_stime) * per:.1f} µs (child)"
    )


def flood(receiver_name: str, dataset: str, senders: int, data_dir: Path) -> None:
    receiver = RECEIVERS[receiver_name]
    files = [str(f.path) for f in load(dataset, data_dir).files]
    count = len(files) // senders * senders * 2
    with (
        tempfile.TemporaryDirectory(dir="/dev/shm") as folder,
        serving(receiver, Path(folder)) as (_, port),
        _counting() as counts,
    ):
        running = start_senders(receiver, port, files, senders, passes=2)
        if any(sender.wait() for sender in running):
            raise SystemExit("a storescu failed")
    print(f"{receiver_name}, {dataset}, {senders} senders, {count} instances, per instance:")
    for event, value in counts.items():
        print(f"  {event}: {value / count:.2f}")


@contextlib.contextmanager
def _counting() -> Iterator[dict[str, float]]:
    """``perf stat -a`` of EVENTS over the block, and the machine's busy CPU time: counting
    starts when perf says it has (its control FIFO's ack); the counts are filled in when
    the block ends."""
    counts: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        control, ack = Path(folder) / "control", Path(folder) / "ack"
        os.mkfifo(control)
        os.mkfifo(ack)
        perf = subprocess.Popen(
            ["perf", "stat", "-x,", "-a", "-e", ",".join(EVENTS), "-D", "-1",
             f"--control=fifo:{control},{ack}"],  # no workload: until SIGINT
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        with open(control, "w") as commands, open(ack) as answers:
            commands.write("enable\n")
            commands.flush()
            answers.readline()
            busy = busy_seconds()
            try:
                yield counts
            finally:
                commands.write("disable\n")
                commands.flush()
                answers.readline()
                counts["busy CPU ms"] = (busy_seconds() - busy) * 1e3
        perf.send_signal(signal.SIGINT)
        _, errors = perf.communicate()
    for line in errors.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in EVENTS:
            counts[fields[2]] = float(fields[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    modes.add_parser("pingpong", help="a wake-up on one CPU and across two")
    counted = modes.add_parser("flood", help="wake-ups and interrupts per instance")
    counted.add_argument("--receiver", default="oxidicom", choices=sorted(RECEIVERS))
    counted.add_argument("--dataset", default="small")
    counted.add_argument("--senders", type=int, default=4)
    counted.add_argument("--data-dir", type=Path, default=Path("/dev/shm/oxidicom-bench-data"))
    args = parser.parse_args()
    if args.mode == "pingpong":
        for cpus in ((0, 0), (0, 1), (0, 0), (0, 1)):
            print(pingpong(*cpus))
    else:
        if not Path(STORESCP).exists():
            raise SystemExit("dcmtk is not installed (apt-get install dcmtk)")
        flood(args.receiver, args.dataset, args.senders, args.data_dir)


if __name__ == "__main__":
    main()
