"""Instructions per small instance of a whole receiver, under callgrind: ours or dcmtk's.

The receiver runs under ``valgrind --tool=callgrind`` (user space only; stable where wall
time is not). dcmtk's ``storescu`` sends it a warm-up association, then, with the counters
zeroed before each (``callgrind_control -z``) and dumped after (``-d``), an association of
``--first`` instances and one of ``--second``: start-up, association set-up and release
cancel out of ``(second - first) / (second - first instances)``::

    python benches/receiver_callgrind.py                      # oxidicom of this checkout
    python benches/receiver_callgrind.py --src /tmp/base      # another checkout, from its folder
    python benches/receiver_callgrind.py --dcmtk              # storescp +B (one process)
    python benches/receiver_callgrind.py --cache-sim          # also first-level cache misses

The files are the flood's small data set (``/dev/shm/oxidicom-bench-data/small``, made by
``python -m benches.flood --quick`` if absent); ``PYTHONHASHSEED=0`` and
``OXIDICOM_FSYNC=false``. Needs valgrind and dcmtk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))  # the repository, for benches.flood

from benches.flood.receivers import RECEIVERS  # noqa: E402

SMALL = Path("/dev/shm/oxidicom-bench-data/small")
#: callgrind's events with --cache-sim=yes, in its order.
CACHE_EVENTS = ("Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")


def _free_port() -> int:
    """A port nobody listens on now (two measurements side by side must not meet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PORT = _free_port()


def _receiver(args: argparse.Namespace, out: Path) -> tuple[list[str], dict[str, str], Path, str]:
    """The receiver's command, environment, working folder and AE title: the flood's
    (``oxidicom-nofsync``; ``storescp-fork-B`` in one process, as callgrind follows one)."""
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.out.%p"]
    if args.cache_sim:
        valgrind.append("--cache-sim=yes")
    if args.dcmtk:
        receiver = RECEIVERS["storescp-fork-B"]
        command, env = receiver.command(PORT, out / "received")
        command.remove("--fork")
        return [*valgrind, *command], env, out, receiver.aet
    receiver = RECEIVERS["oxidicom-nofsync"]
    _, env = receiver.command(PORT, out)
    tree = Path(args.src).resolve() if args.src else HERE
    # The tree's folder as the working folder: ``python -m`` puts it before PYTHONPATH.
    env |= {"PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)}
    return [*valgrind, sys.executable, "-m", "oxidicom"], env, tree, receiver.aet


class SendFailed(Exception):
    """storescu did not store every file."""


def _send(aet: str, files: list[Path]) -> None:
    done = subprocess.run(
        ["storescu", "-aec", aet, "-xs", "127.0.0.1", str(PORT), *map(str, files)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TCP_NODELAY": "1"},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SendFailed(done.stderr.strip().splitlines()[-1:] or done.returncode)


def _measure(pid: int, out: Path, aet: str, files: list[Path]) -> list[int]:
    """The events of one association of ``files``, counters zeroed before it."""
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    _send(aet, files)
    before = set(out.glob("cg.out.*"))
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dumps = set(out.glob("cg.out.*")) - before
        for dump in dumps:
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith(("summary:", "totals:")):
                    return [int(n) for n in line.split()[1:]]
        time.sleep(0.2)
    raise SystemExit("callgrind wrote no dump within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", help="another checkout's folder (run from there)")
    parser.add_argument("--dcmtk", action="store_true", help="measure storescp +B instead")
    parser.add_argument("--cache-sim", action="store_true", help="also count cache misses")
    parser.add_argument("--first", type=int, default=100)
    parser.add_argument("--second", type=int, default=400)
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "storescu", "storescp"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install valgrind dcmtk")
    if not SMALL.is_dir():
        subprocess.run([sys.executable, "-m", "benches.flood", "--quick"], cwd=HERE, check=True)
    files = sorted(SMALL.glob("*.dcm"))
    if len(files) < args.second:
        raise SystemExit(f"{SMALL} has {len(files)} files, fewer than --second {args.second}")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        out = Path(folder)
        command, env, cwd, aet = _receiver(args, out)
        log = (out / "log").open("w")
        receiver = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    _send(aet, files[:1])  # also the warm-up's start: the receiver is up
                    break
                except SendFailed:
                    if time.monotonic() > deadline or receiver.poll() is not None:
                        raise SystemExit(f"the receiver did not start: {out / 'log'}") from None
                    time.sleep(0.5)
            _send(aet, files[:50])
            first = _measure(receiver.pid, out, aet, files[: args.first])
            second = _measure(receiver.pid, out, aet, files[: args.second])
        finally:
            receiver.terminate()
            receiver.wait(timeout=120)
            log.close()
    count = args.second - args.first
    names = CACHE_EVENTS if args.cache_sim else ("Ir",)
    who = "storescp +B" if args.dcmtk else f"oxidicom ({cwd})"
    per = {name: (b - a) / count for name, a, b in zip(names, first, second, strict=False)}
    print(f"{who}: " + ", ".join(f"{name} {value:,.0f}" for name, value in per.items()))
    print("per small instance, (second - first) / instances between them")


if __name__ == "__main__":
    main()
