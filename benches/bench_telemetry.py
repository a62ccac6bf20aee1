"""What telemetry costs per instance: the receiver's CPU with export off, on, and without it.

Macro: a real receiver process (files on tmpfs) takes a flood of small instances from
dcmtk's storescu over one association; its CPU time (all threads, from
/proc/PID/task/*/schedstat, nanoseconds) is divided by the instance count. Three
receivers: ``baseline`` (the commit before telemetry, from ``git archive``),
``off`` (no OTLP endpoint) and ``on`` (exporting to a local OTLP/HTTP sink, default
intervals). Runs alternate to spread drift.

Micro: timeit of the per-instance and per-read hooks themselves.

    .venv/bin/python benches/bench_telemetry.py [--instances 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import timeit
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.dicom_factory import mr_instance, write_part10  # noqa: E402

BASELINE_COMMIT = "e2977a0"
STORESCU = "/usr/bin/storescu"


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def cpu_ns(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


def run_receiver(
    source: Path,
    work: Path,
    files: Path,
    count: int,
    extra_env: dict[str, str],
    associations: int = 1,
) -> float:
    """CPU nanoseconds per instance spent by one receiver process storing ``files``.

    With ``associations`` > 1, that many storescu runs send one file each instead.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OXIDICOM_", "OTEL_"))}
    env.update(
        OXIDICOM_FILES_ROOT=str(work / "files"),
        OXIDICOM_OUTBOX_DIR=str(work / "outbox"),
        OXIDICOM_LISTENER_PORT="0",
        OXIDICOM_LISTENER_ADDRESS="127.0.0.1",
        OXIDICOM_LOG_LEVEL="WARNING",
        PYTHONPATH=str(source),
        **extra_env,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "oxidicom"],
        env={**env, "OXIDICOM_LOG_LEVEL": "INFO"},
        cwd=work,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    port = None
    for line in process.stderr:
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            port = match.group(1)
            break
    assert port is not None
    threading.Thread(target=process.stderr.read, daemon=True).start()
    before = cpu_ns(process.pid)
    if associations == 1:
        batches = [[str(files)]]
    else:
        count = associations
        batches = [[str(p)] for p in sorted(files.iterdir())[:associations]]
    for batch in batches:
        sent = subprocess.run(
            [STORESCU, "-aec", "ChRIS", "+sd", "127.0.0.1", port, *batch],
            env={**os.environ, "TCP_NODELAY": "1"},
            capture_output=True,
            timeout=600,
        )
        assert sent.returncode == 0, sent.stderr
    after = cpu_ns(process.pid)
    process.terminate()
    process.wait(60)
    stored = sum(1 for p in (work / "files").rglob("*.dcm"))
    assert stored == count, (stored, count)
    shutil.rmtree(work / "files")
    return (after - before) / count


def _best(statement: object, number: int) -> float:
    """Seconds per call: the best of 5 repeats (the least disturbed by other load)."""
    return min(timeit.repeat(statement, number=number, repeat=5)) / number  # type: ignore[arg-type]


def micro() -> dict[str, float]:
    from oxidicom import telemetry
    from oxidicom.aio.context import ScopedProtocol

    results: dict[str, float] = {}
    n = 200_000
    off = telemetry.association("bench-1", "127.0.0.1:1")
    results["instance_stored() hook"] = timeit.timeit(off.instance_stored, number=n) / n
    results["received(n) hook, per read"] = timeit.timeit(lambda: off.received(16384), number=n) / n

    class Inner:
        association = None

        def data_received(self, data: bytes) -> None:
            pass

        def get_buffer(self, sizehint: int) -> memoryview:
            return memoryview(bytearray(1))

    wrapper = ScopedProtocol(Inner())  # type: ignore[arg-type]
    wrapper._scope = off
    data = b"x" * 16384
    direct = Inner()
    results["ScopedProtocol per read (vs direct call)"] = _best(
        lambda: wrapper.data_received(data), n
    ) - _best(lambda: direct.data_received(data), n)

    def association_lifecycle() -> None:
        a = telemetry.association("bench-2", "127.0.0.1:1")
        a.requested("PACS", "ChRIS")
        a.accepted()
        a.ended("released")

    m = 5_000
    results["association lifecycle, export off"] = (
        timeit.timeit(association_lifecycle, number=m) / m
    )
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    class Drop(InMemorySpanExporter):
        def export(self, spans: object) -> object:  # type: ignore[override]
            return super().export(())

    # Batch processor, as in production (the OTLP exporter replaced by one that drops).
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    telemetry.setup({}, span_exporter=Drop(), metric_reader=InMemoryMetricReader())
    exporting = telemetry._exporting
    assert exporting is not None and exporting.tracer_provider is not None
    exporting.tracer_provider._active_span_processor._span_processors = (
        BatchSpanProcessor(Drop()),
    )
    on = telemetry.association("bench-3", "127.0.0.1:1")
    on.requested("PACS", "ChRIS")
    results["instance_stored() hook, export on"] = _best(on.instance_stored, n)
    results["association lifecycle, export on (span + histogram)"] = _best(association_lifecycle, m)
    telemetry.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--associations",
        type=int,
        default=1,
        help="send one instance per association, this many times (default: one association)",
    )
    args = parser.parse_args()

    for name, seconds in micro().items():
        print(f"micro  {name:55s} {seconds * 1e9:8.0f} ns")
    if shutil.which(STORESCU) is None:
        print("dcmtk's storescu is missing: macro benchmark skipped")
        return

    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp_text:
        tmp = Path(tmp_text)
        baseline = tmp / "baseline"
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", BASELINE_COMMIT], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(baseline, filter="data")
        files = tmp / "instances"
        files.mkdir()
        for n in range(1, args.instances + 1):
            write_part10(mr_instance(instance_number=n), files / f"{n:05d}.dcm")
        size = sum(p.stat().st_size for p in files.iterdir()) // args.instances
        sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        # Default intervals (metrics every 60 s, spans batched every 5 s), as in production.
        exporting = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}"}
        variants = {
            "baseline": (baseline, {}),
            "off": (ROOT, {}),
            "on": (ROOT, exporting),
        }
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (source, env) in variants.items():
                work = tmp / f"work-{name}"
                work.mkdir(exist_ok=True)
                samples[name].append(
                    run_receiver(source, work, files, args.instances, env, args.associations)
                )
        sink.shutdown()
        how = (
            f"{args.instances} instances of {size} B in one storescu association"
            if args.associations == 1
            else f"{args.associations} associations of one {size} B instance each"
        )
        print(f"macro  receiver CPU per instance, {how}, {args.rounds} rounds (median, min-max):")
        for name, values in samples.items():
            print(
                f"macro  {name:9s} {statistics.median(values) / 1000:7.1f} µs"
                f"  ({min(values) / 1000:.1f}-{max(values) / 1000:.1f})"
            )


if __name__ == "__main__":
    main()
