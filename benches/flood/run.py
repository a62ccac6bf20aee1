"""The flood bench's command line: every measurement in alternation, then the report."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

from benches.flood import BENCHES, ROOT
from benches.flood.ceilings import measure_ceilings
from benches.flood.datasets import GENERATORS, DataSet, load
from benches.flood.machine import describe
from benches.flood.measure import Measurement, measure
from benches.flood.procs import kill_all
from benches.flood.receivers import BASELINE, DEFAULT_RECEIVERS, RECEIVERS, checkout_receiver
from benches.flood.report import write
from oxidicom.storage.writer import memory_backed

DEFAULT_DATA = Path("/dev/shm/oxidicom-bench-data")
#: Memory, as the data: on a disk oxidicom fsyncs each file (its default) and dcmtk never
#: does, which compares unequal durability (small: 0.25-0.45 x against about 0.85 x).
DEFAULT_OUT = (
    Path("/dev/shm/oxidicom-bench-out") if Path("/dev/shm").is_dir() else BENCHES / ".work"
)


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benches.flood",
        description="Flood fresh receivers with dcmtk storescu and compare them.",
    )
    parser.add_argument("--datasets", type=_list, default=["small", "ct", "big", "real"])
    parser.add_argument("--concurrency", type=_list, default=["1", "4", "16"])
    parser.add_argument("--receivers", type=_list, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="send only the first N files")
    parser.add_argument(
        "--passes",
        type=int,
        default=3,
        help="each sender sends its share this many times (long enough floods to measure)",
    )
    parser.add_argument(
        "--nagle", action="store_true", help="also: small data set, C=1, storescu with Nagle on"
    )
    parser.add_argument("--nagle-count", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT,
        help="where receivers write (its filesystem is measured too)",
    )
    parser.add_argument("--results", type=Path, default=BENCHES / "results")
    parser.add_argument("--name", default=None, help="results file name (default flood)")
    parser.add_argument("--no-ceilings", action="store_true")
    parser.add_argument(
        "--from-json", type=Path, default=None, help="only rewrite the report of a raw JSON file"
    )
    parser.add_argument("--keep", action="store_true", help="keep logs of successful runs")
    parser.add_argument(
        "--checkout",
        type=Path,
        action="append",
        default=[],
        help="also measure oxidicom from this checkout (as oxidicom@NAME), in the same rounds",
    )
    parser.add_argument(
        "--checkout-as",
        default="oxidicom",
        metavar="RECEIVER",
        help="run the checkouts as this oxidicom receiver, e.g. oxidicom-workers2"
        " (named RECEIVER@NAME); default: oxidicom",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: small data set cut to 200, C=1,4, one repeat, writes flood-quick.*",
    )
    args = parser.parse_args(argv)
    if args.quick:
        given = set(argv or sys.argv[1:])
        if not any(a.startswith("--datasets") for a in given):
            args.datasets = ["small"]
        if not any(a.startswith("--concurrency") for a in given):
            args.concurrency = ["1", "4"]
        if not any(a.startswith("--repeats") for a in given):
            args.repeats = 1
        if args.limit is None:
            args.limit = 200
        if not any(a.startswith("--passes") for a in given):
            args.passes = 1
        args.timeout = min(args.timeout, 120.0)
    args.name = args.name or ("flood-quick" if args.quick else "flood")
    args.concurrency = [int(c) for c in args.concurrency]
    if args.receivers is None:
        args.receivers = default_receivers(args.out_dir)
    if args.passes < 1:
        parser.error("--passes must be at least 1")
    if args.checkout_as not in RECEIVERS or not args.checkout_as.startswith("oxidicom"):
        parser.error(f"--checkout-as {args.checkout_as}: not one of oxidicom's receivers")
    for folder in args.checkout:
        if not (folder / "oxidicom" / "__main__.py").is_file():
            parser.error(f"--checkout {folder}: not a checkout of oxidicom")
        receiver = checkout_receiver(folder, args.checkout_as)
        RECEIVERS[receiver.name] = receiver
        if receiver.name not in args.receivers:
            args.receivers.append(receiver.name)
    for name in args.receivers:
        if name not in RECEIVERS:
            parser.error(f"unknown receiver {name!r}; known: {', '.join(RECEIVERS)}")
    for name in args.datasets:
        if name not in GENERATORS:
            parser.error(f"unknown data set {name!r}; known: {', '.join(GENERATORS)}")
    return args


def plan(args: argparse.Namespace) -> list[tuple[DataSet, int, bool]]:
    """(data set, concurrency, nagle) in the order they run; big only at C=1."""
    steps: list[tuple[DataSet, int, bool]] = []
    for name in args.datasets:
        dataset = load(name, args.data_dir).limited(args.limit)
        for c in args.concurrency:
            if name == "big" and c != 1:
                continue
            steps.append((dataset, c, False))
    if args.nagle:
        steps.append((load("small", args.data_dir).limited(args.nagle_count), 1, True))
    return steps


def _line(m: Measurement) -> str:
    if not m.ok:
        return f"FAILED {m.error}"
    return (
        f"{m.inst_per_s:8.1f} inst/s {m.mib_per_s:7.1f} MiB/s  cpu {m.cpu_s:6.2f} s  "
        f"senders {m.senders_cpu_s:6.2f} s  rss {m.peak_rss_kib / 1024:5.0f} MiB"
    )


def rewrite(raw: Path, results: Path, name: str) -> int:
    """Write the table and the plot again from a raw JSON file of an earlier run."""
    document = json.loads(raw.read_text())
    settings = document["settings"]
    written = write(
        results,
        name,
        document["runs"],
        settings.get("baseline", BASELINE),
        document["ceilings"],
        document["machine"],
        settings,
    )
    for path in written:
        print(path)
    return 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def default_receivers(out_dir: Path) -> list[str]:
    """The receivers measured when none are named.

    ``oxidicom-nofsync`` is left out where the output is in memory: oxidicom skips fsync
    on tmpfs, so it would measure ``oxidicom`` twice.
    """
    if memory_backed(out_dir):
        return [name for name in DEFAULT_RECEIVERS if name != "oxidicom-nofsync"]
    return list(DEFAULT_RECEIVERS)


def main(argv: list[str] | None = None) -> int:
    begun = time.monotonic()
    args = parse(argv)
    if args.from_json:
        return rewrite(args.from_json, args.results, args.name)
    signal.signal(signal.SIGINT, _interrupt)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    # Absolute: each receiver runs in its own folder (measure.py).
    work = args.out_dir.resolve() / time.strftime("run-%Y%m%d-%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    steps = plan(args)
    settings = {
        "command": "python -m benches.flood " + shlex.join(argv if argv else sys.argv[1:]),
        "repeats": str(args.repeats),
        "limit": str(args.limit or "none"),
        "passes": f"{args.passes} (Nagle step: 1)",
        "baseline": BASELINE,
        "sender": f"{shutil.which('storescu')} (TCP_NODELAY=1 unless -nagle)",
    }
    machine = describe(args.out_dir, args.data_dir)
    if not memory_backed(args.out_dir):
        print(
            f"note: {args.out_dir} is not in memory: oxidicom fsyncs each file there and"
            " dcmtk never does (compare with the oxidicom-nofsync receiver)",
            file=sys.stderr,
            flush=True,
        )
    ceilings: dict[str, float] = {}
    rows: list[dict[str, object]] = []
    total = len(steps) * args.repeats * len(args.receivers)
    done = 0
    started = time.monotonic()
    try:
        if not args.no_ceilings:
            print("measuring ceilings ...", file=sys.stderr, flush=True)
            ceilings = measure_ceilings(work, args.quick)
            print(json.dumps(ceilings), file=sys.stderr, flush=True)
        for step, (dataset, c, nagle) in enumerate(steps):
            for repeat in range(args.repeats):
                shift = (repeat + step) % len(args.receivers)
                order = args.receivers[shift:] + args.receivers[:shift]
                for name in order:
                    m = measure(
                        RECEIVERS[name],
                        dataset,
                        c,
                        repeat,
                        work,
                        nagle=nagle,
                        timeout=args.timeout,
                        keep=args.keep,
                        passes=1 if nagle else args.passes,
                    )
                    rows.append(m.to_json())
                    done += 1
                    print(
                        f"[{done}/{total} {time.monotonic() - started:6.0f}s] "
                        f"{m.dataset:12} C={c:<3} r{repeat} {name:18} {_line(m)}",
                        file=sys.stderr,
                        flush=True,
                    )
    except KeyboardInterrupt:
        print("interrupted: writing what was measured", file=sys.stderr)
    finally:
        kill_all()
        with contextlib.suppress(OSError):
            work.rmdir()  # kept when it holds the logs of failed measurements
    if not rows:
        return 1
    # What `make bench` costs its runner, data sets made or copied included.
    settings["duration"] = f"{(time.monotonic() - begun) / 60:.1f} min"
    written = write(args.results, args.name, rows, BASELINE, ceilings, machine, settings)
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0 if all(r["ok"] for r in rows) else 3
