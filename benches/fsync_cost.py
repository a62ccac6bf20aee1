"""What OXIDICOM_FSYNC costs: instances/s for small instances and MiB/s for large ones.

    .venv/bin/python benches/fsync_cost.py --dir /var/tmp/oxidicom-bench

``--dir`` must be on the disk to measure (this machine: ext4 on /dev/vda); files go under
it and are removed. Senders are dcmtk storescu processes (TCP_NODELAY=1), ``--senders``
at once, each with its share of the files in one association. Each configuration runs
``--repeat`` times, interleaved; the median is printed, then every run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _receiver import start_receiver

from tests.dicom_factory import mr_instance, write_part10

STORESCU = "/usr/bin/storescu"


def make_instances(directory: Path, count: int, rows: int, frames: int | None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [
        write_part10(
            mr_instance(instance_number=n + 1, rows=rows, columns=rows, frames=frames),
            directory / f"{n:05d}.dcm",
        )
        for n in range(count)
    ]


def push(port: int, files: list[Path], senders: int) -> float:
    shares = [files[i::senders] for i in range(senders)]
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            [STORESCU, "-aet", f"BENCH{i}", "-aec", "ChRIS", "127.0.0.1", str(port)]
            + [str(f) for f in share],
            env={**os.environ, "TCP_NODELAY": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i, share in enumerate(shares)
    ]
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"storescu failed: {err.decode()[:500]}")
    return time.perf_counter() - start


def run(base: Path, fsync: bool, files: list[Path], senders: int) -> float:
    work = Path(tempfile.mkdtemp(prefix=f"fsync-{fsync}-", dir=base))
    try:
        receiver = start_receiver(
            work, {"OXIDICOM_FSYNC": str(fsync).lower(), "OXIDICOM_LOG_LEVEL": "INFO"}
        )
    except BaseException:
        shutil.rmtree(work)
        raise
    try:
        seconds = push(receiver.port, files, senders)
        assert len(receiver.stored_files()) == len(files)
    finally:
        receiver.stop()
        shutil.rmtree(work)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/oxidicom-bench"))
    parser.add_argument("--small", type=int, default=1000, help="small instances (8 KiB)")
    parser.add_argument("--large", type=int, default=24, help="large instances (8 MiB)")
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    source = Path(tempfile.mkdtemp(prefix="sources-", dir=args.dir))
    try:
        small = make_instances(source / "small", args.small, 64, None)
        large = make_instances(source / "large", args.large, 512, 16)
        large_mib = sum(f.stat().st_size for f in large) / 2**20
        print(
            f"disk: {args.dir} ({args.small} x {small[0].stat().st_size} B small;"
            f" {args.large} x {large[0].stat().st_size / 2**20:.1f} MiB large;"
            f" {args.senders} senders; median of {args.repeat})"
        )
        # Interleaved, so that the disk's state (recent deletes are slow to undo on
        # ext4 with online discard) weighs on both settings alike.
        times: dict[tuple[bool, str], list[float]] = {}
        for _ in range(args.repeat):
            for kind, files in (("small", small), ("large", large)):
                for fsync in (False, True):
                    seconds = run(args.dir, fsync, files, args.senders)
                    times.setdefault((fsync, kind), []).append(seconds)
        for fsync in (False, True):
            small_s = statistics.median(times[fsync, "small"])
            large_s = statistics.median(times[fsync, "large"])
            setting = f"OXIDICOM_FSYNC={str(fsync).lower():5}"
            small_runs = ", ".join(f"{args.small / t:.0f}" for t in times[fsync, "small"])
            large_runs = ", ".join(f"{large_mib / t:.0f}" for t in times[fsync, "large"])
            print(
                f"{setting}  small: {args.small / small_s:7.0f} inst/s"
                f"   large: {large_mib / large_s:6.0f} MiB/s"
                f"   (runs: small {small_runs}; large {large_runs})"
            )
    finally:
        shutil.rmtree(source)


if __name__ == "__main__":
    main()
