"""STOW-RS throughput: oxidicom's DICOMweb listener against Orthanc's, in the same run.

    .venv/bin/python -m benches.stow                     # about 3 minutes
    .venv/bin/python -m benches.stow --repeats 1 --ct-count 120   # a smoke run

Two data sets, both from benches/flood's generators (cached in --data-dir):

- ``ct``: 600 CT instances of 512 KiB of pixels (3 series), sent as requests of
  ``--per-request`` instances each, by ``--clients`` concurrent clients (1 and 4);
- ``big``: one multi-frame instance of 256 MiB, one request.

Receivers, each started fresh for every repeat so that nobody answers "already stored":
oxidicom without fsync (Orthanc does not fsync either), oxidicom with fsync (its default),
and Orthanc with its DICOMweb plugin (Debian's ``orthanc-dicomweb``), its STOW-RS endpoint
``POST /dicom-web/studies``. Every receiver gets the same bytes from the same client
(http.client, bodies streamed from the files in 1 MiB blocks), and writes under --out-dir.
Reported: median MiB/s of the repeats, peak RSS of the receiver, and oxidicom / Orthanc.
Results go to benches/results/stow.md (--results).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benches.flood.datasets import DataSet, load  # noqa: E402
from tests.integration.dicomweb import start_stow_receiver  # noqa: E402
from tests.integration.orthanc import ORTHANC, Orthanc  # noqa: E402

PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
BOUNDARY = "oxidicom-stow-bench-boundary"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
MIB = 1024 * 1024


# -- requests ---------------------------------------------------------------------------


def _part_head() -> bytes:
    return f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()


_TAIL = f"--{BOUNDARY}--\r\n".encode()


def body_length(files: list[Path]) -> int:
    return sum(len(_part_head()) + f.stat().st_size + 2 for f in files) + len(_TAIL)


def body(files: list[Path]) -> Iterator[bytes]:
    """The multipart body of ``files``, read as it is sent (never whole in memory)."""
    for path in files:
        yield _part_head()
        with path.open("rb") as f:
            while block := f.read(MIB):
                yield block
        yield b"\r\n"
    yield _TAIL


def stow(port: int, path: str, files: list[Path]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request(
            "POST",
            path,
            body=body(files),
            headers={"Content-Type": CONTENT_TYPE, "Content-Length": str(body_length(files))},
        )
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise SystemExit(f"POST {path} on port {port}: {response.status} {answer[:300]!r}")


def send(port: int, path: str, files: list[Path], per_request: int, clients: int) -> float:
    """Seconds to send every file, ``clients`` requests at a time."""
    requests = [files[i : i + per_request] for i in range(0, len(files), per_request)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda chunk: stow(port, path, chunk), requests))
    return time.perf_counter() - start


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- receivers --------------------------------------------------------------------------


@dataclass
class Running:
    port: int
    path: str
    pid: int
    stop: Callable[[], None]


def oxidicom(out: Path, fsync: bool) -> Running:
    env = {"OXIDICOM_FSYNC": "true" if fsync else "false", "OXIDICOM_LOG_LEVEL": "INFO"}
    running = start_stow_receiver(out, env)

    def stop() -> None:
        running.receiver.stop()

    return Running(running.http_port, "/dicom-web/studies", running.receiver.process.pid, stop)


def orthanc(out: Path) -> Running:
    server = Orthanc(
        out,
        "BENCHORTHANC",
        1,
        {"Plugins": [PLUGIN], "DicomWeb": {"Enable": True}, "ConcurrentJobs": 2},
    )
    return Running(server.http_port, "/dicom-web/studies", server.process.pid, server.stop)


RECEIVERS: dict[str, Callable[[Path], Running]] = {
    "oxidicom": lambda out: oxidicom(out, fsync=False),
    "oxidicom-fsync": lambda out: oxidicom(out, fsync=True),
    "orthanc": orthanc,
}


# -- the run ----------------------------------------------------------------------------


@dataclass
class Result:
    dataset: str
    clients: int
    receiver: str
    seconds: list[float]
    peak_mib: list[float]
    payload: int
    count: int

    @property
    def mib_s(self) -> float:
        return self.payload / MIB / statistics.median(self.seconds)


def run(args: argparse.Namespace) -> list[Result]:
    ct = load("ct", args.data_dir)
    ct = DataSet(ct.name, ct.files[: args.ct_count])
    big = load("big", args.data_dir)
    steps: list[tuple[DataSet, int, int]] = [(ct, 1, args.per_request)]
    steps += [(ct, c, args.per_request) for c in args.clients if c != 1]
    steps.append((big, 1, 1))
    results: list[Result] = []
    for dataset, clients, per_request in steps:
        files = [f.path for f in dataset.files]
        by_receiver = {
            name: Result(dataset.name, clients, name, [], [], dataset.payload_bytes, len(files))
            for name in args.receivers
        }
        for repeat in range(args.repeats):
            for name in args.receivers:  # interleaved: drift of the machine hits all alike
                out = args.out_dir / f"{name}-{dataset.name}-{clients}-{repeat}"
                shutil.rmtree(out, ignore_errors=True)
                receiver = RECEIVERS[name](out)
                try:
                    seconds = send(receiver.port, receiver.path, files, per_request, clients)
                    by_receiver[name].peak_mib.append(peak_rss_mib(receiver.pid))
                finally:
                    receiver.stop()
                    shutil.rmtree(out, ignore_errors=True)
                by_receiver[name].seconds.append(seconds)
                print(
                    f"{dataset.name} C={clients} {name}: {seconds:.2f} s"
                    f" ({dataset.payload_bytes / MIB / seconds:.0f} MiB/s)",
                    flush=True,
                )
        results.extend(by_receiver.values())
    return results


def report(results: list[Result], args: argparse.Namespace, elapsed: float) -> str:
    lines = [
        "# STOW-RS: oxidicom against Orthanc's DICOMweb plugin",
        "",
        f"`python -m benches.stow {' '.join(sys.argv[1:])}` ({elapsed / 60:.1f} min).",
        "",
        "| data set | clients | receiver | MiB/s (median) | instances/s | runs (s) | peak RSS MiB |"
        " oxidicom / Orthanc |",
        "|---|---|---|---|---|---|---|---|",
    ]
    reference = {(r.dataset, r.clients): r.mib_s for r in results if r.receiver == "orthanc"}
    for r in results:
        base = reference.get((r.dataset, r.clients))
        ratio = f"{r.mib_s / base:.2f} x" if base and r.receiver != "orthanc" else ""
        runs = ", ".join(f"{s:.2f}" for s in r.seconds)
        rate = r.count / statistics.median(r.seconds)
        lines.append(
            f"| {r.dataset} ({r.count} x {r.payload / r.count / MIB:.1f} MiB) | {r.clients} |"
            f" {r.receiver} | {r.mib_s:.0f} | {rate:.0f} | {runs} |"
            f" {max(r.peak_mib):.1f} | {ratio} |"
        )
    lines += [
        "",
        "## Conditions",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()},"
        f" Python {platform.python_version()}. **The 2 cores were shared with other"
        " engineers' test runs while this ran**: absolute numbers are noisy (repeat"
        " spread in the `runs` column); the ratio, measured interleaved, is the figure to"
        " read.",
        f"- Output on {args.out_dir} (the same filesystem for both receivers); each receiver"
        " fresh for every run. oxidicom: OXIDICOM_FSYNC=false unless named -fsync;"
        " Orthanc: Debian's package and plugin, default settings (SQLite index, no"
        " compression, no fsync).",
        f"- ct: requests of {args.per_request} instances; the client is Python's"
        " http.client streaming each body from the files (1 MiB blocks), on the same"
        " machine.",
        "- Peak RSS: VmHWM of the receiver process after its run.",
        "",
        "Raw:",
        "",
        "```json",
        json.dumps([r.__dict__ for r in results], indent=1, default=str),
        "```",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/dev/shm/oxidicom-bench-data"))
    parser.add_argument("--out-dir", type=Path, default=Path("/var/tmp/oxidicom-stow-bench"))
    parser.add_argument("--results", type=Path, default=ROOT / "benches/results/stow.md")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ct-count", type=int, default=600)
    parser.add_argument("--per-request", type=int, default=50)
    parser.add_argument("--clients", type=lambda s: [int(c) for c in s.split(",")], default=[1, 4])
    parser.add_argument("--receivers", type=lambda s: s.split(","), default=list(RECEIVERS))
    args = parser.parse_args()
    for tool in (ORTHANC, PLUGIN):
        if not Path(tool).exists():
            raise SystemExit(f"{tool} is missing: apt-get install orthanc orthanc-dicomweb")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = run(args)
    text = report(results, args, time.perf_counter() - started)
    args.results.write_text(text)
    print(text.split("## Conditions")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
