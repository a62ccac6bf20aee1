"""The receivers compared, as a table: how to start each and where its files land.

Adding one is one entry in RECEIVERS (e.g. ``_oxidicom("oxidicom-workers2",
{"OXIDICOM_WORKERS": "2"})``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from benches.flood import BENCHES
from oxidicom.scp.shares import workers_for
from oxidicom.support.cpus import usable_cpus

STORESCP = shutil.which("storescp") or "/usr/bin/storescp"


def base_env() -> dict[str, str]:
    """The bench's environment without any OXIDICOM_* setting, TCP_NODELAY or OTEL_*."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OXIDICOM_", "OTEL_")) and k != "TCP_NODELAY"
    }


def oxidicom_command() -> list[str]:
    """The shipped entry point: $OXIDICOM_BENCH_CMD, else ``oxidicom`` next to this Python."""
    override = os.environ.get("OXIDICOM_BENCH_CMD")
    if override:
        return shlex.split(override)
    script = Path(sys.executable).parent / "oxidicom"
    return [str(script)] if script.exists() else [sys.executable, "-m", "oxidicom"]


@dataclass(frozen=True)
class Receiver:
    name: str
    aet: str
    # (port, output folder) -> (command, environment)
    command: Callable[[int, Path], tuple[list[str], dict[str, str]]]
    # output folder -> final files (never temporary ones)
    stored: Callable[[Path], Iterator[Path]]
    # final file -> the SOPInstanceUID its name carries
    uid_of: Callable[[Path], str]
    notes: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    #: (text, n): ready once its log holds n lines with text (every worker process started)
    ready_lines: tuple[str, int] | None = None


#: OXIDICOM_LISTENER_THREADS of every oxidicom measured.
SLOTS = 64
#: The Redis of ``oxidicom-series-store`` (a database of its own; flushed by nothing).
SERIES_STORE = os.environ.get("OXIDICOM_BENCH_SERIES_STORE", "redis://127.0.0.1:6379/9")


def _oxidicom_stored(out: Path) -> Iterator[Path]:
    # temporary files live in files/.oxidicom-tmp/, outside SERVICES/PACS
    return (p for p in (out / "files" / "SERVICES" / "PACS").rglob("*.dcm") if p.is_file())


def _oxidicom_uid(path: Path) -> str:
    # {InstanceNumber:04}-{SOPInstanceUID}.dcm
    return path.name.removesuffix(".dcm").split("-", 1)[1]


def _oxidicom(name: str, extra: dict[str, str], notes: str) -> Receiver:
    def command(port: int, out: Path) -> tuple[list[str], dict[str, str]]:
        env = base_env() | {
            "OXIDICOM_LISTENER_ADDRESS": "127.0.0.1",
            "OXIDICOM_LISTENER_PORT": str(port),
            "OXIDICOM_FILES_ROOT": str(out / "files"),
            "OXIDICOM_OUTBOX_DIR": str(out / "outbox"),
            # the default (8) would reject half of 16 concurrent senders
            "OXIDICOM_LISTENER_THREADS": str(SLOTS),
            "OXIDICOM_LOG_FORMAT": "json",
        }
        return oxidicom_command(), env | extra

    # As shipped, OXIDICOM_WORKERS is auto. (An older checkout whose default was one
    # process is run with --checkout-as oxidicom-workers1.)
    workers = workers_for(int(extra.get("OXIDICOM_WORKERS", usable_cpus())), SLOTS)
    return Receiver(
        name,
        "ChRIS",
        command,
        _oxidicom_stored,
        _oxidicom_uid,
        notes,
        ready_lines=("listening on", workers),
    )


def _storescp_stored(out: Path) -> Iterator[Path]:
    return (p for p in out.iterdir() if p.is_file())


def _storescp_uid(path: Path) -> str:
    # {modality abbreviation}.{SOPInstanceUID}, e.g. MR.1.2.3
    return path.name.split(".", 1)[1]


def _storescp(name: str, options: list[str], notes: str) -> Receiver:
    def command(port: int, out: Path) -> tuple[list[str], dict[str, str]]:
        out.mkdir(parents=True, exist_ok=True)
        argv = [STORESCP, *options, "+xa", "-od", str(out), "-aet", "STORESCP", str(port)]
        return argv, base_env() | {"TCP_NODELAY": "1"}

    return Receiver(name, "STORESCP", command, _storescp_stored, _storescp_uid, notes)


def _pynetdicom_stored(out: Path) -> Iterator[Path]:
    return (p for p in out.glob("*.dcm") if p.is_file())  # temporary files are in .tmp/


def _pynetdicom(name: str, mode: str, notes: str) -> Receiver:
    def command(port: int, out: Path) -> tuple[list[str], dict[str, str]]:
        script = str(BENCHES / "pynetdicom_scp.py")
        argv = [sys.executable, script, "--port", str(port), "--out", str(out), "--mode", mode]
        return argv, base_env()

    return Receiver(name, "PYNETDICOM", command, _pynetdicom_stored, lambda p: p.stem, notes)


RECEIVERS: dict[str, Receiver] = {
    r.name: r
    for r in (
        _oxidicom(
            "oxidicom",
            {},
            f"as shipped (uvloop, OXIDICOM_WORKERS=auto: {workers_for(usable_cpus(), SLOTS)}"
            " process(es) here, fsync each file but on tmpfs), LISTENER_THREADS=64",
        ),
        _oxidicom(
            "oxidicom-workers1",
            {"OXIDICOM_WORKERS": "1"},
            "OXIDICOM_WORKERS=1: one process (the default until 2026-12-07)",
        ),
        _oxidicom(
            "oxidicom-workers2",
            {"OXIDICOM_WORKERS": "2"},
            "OXIDICOM_WORKERS=2: two processes, handed connections by their supervisor",
        ),
        _oxidicom(
            "oxidicom-workers4",
            {"OXIDICOM_WORKERS": "4"},
            "OXIDICOM_WORKERS=4: four processes, handed connections by their supervisor",
        ),
        _oxidicom(
            "oxidicom-series-store",
            {"OXIDICOM_SERIES_STORE": SERIES_STORE},
            f"OXIDICOM_SERIES_STORE={SERIES_STORE}: series held in Redis, as replicas on"
            " several hosts do (compare with oxidicom in the same run)",
        ),
        _oxidicom(
            "oxidicom-pure",
            {"OXIDICOM_NO_EXTENSIONS": "1"},
            "OXIDICOM_NO_EXTENSIONS=1: the pure-Python receive path (no compiled module)",
        ),
        _oxidicom(
            "oxidicom-nofsync",
            {"OXIDICOM_FSYNC": "false"},
            "OXIDICOM_FSYNC=false: no fsync, like the others",
        ),
        # The PDU length sweep that chose OXIDICOM_SCP_MAX_PDU_LENGTH (default 128 KiB):
        # the sender splits data sets by what we advertise.
        *(
            _oxidicom(
                f"oxidicom-pdu{size // 1024}k",
                {"OXIDICOM_SCP_MAX_PDU_LENGTH": str(size)},
                f"OXIDICOM_SCP_MAX_PDU_LENGTH={size}",
            )
            for size in (16384, 32768, 65536, 131072, 262144, 1048576)
        ),
        _storescp("storescp-fork-B", ["--fork", "+B"], "dcmtk, a process per association, +B"),
        _storescp("storescp", [], "dcmtk, one process, defaults"),
        _storescp("storescp-B", ["+B"], "dcmtk, one process, +B (each child of storescp-fork-B)"),
        _pynetdicom("pynetdicom", "chunked", "STORE_RECV_CHUNKED_DATASET, rename"),
        _pynetdicom("pynetdicom-memory", "memory", "encoded_dataset() to a file, rename"),
    )
}


def checkout_receiver(folder: Path, base: str = "oxidicom") -> Receiver:
    """Receiver ``base`` (``oxidicom`` as shipped, or one of its variants), but the code of
    another checkout (its compiled twins built in place): a before/after in the same
    rounds. Named ``{base}@{folder name}``."""
    folder = folder.resolve()
    shipped = RECEIVERS[base]

    def command(port: int, out: Path) -> tuple[list[str], dict[str, str]]:
        _, env = shipped.command(port, out)
        # The receiver starts in its measurement folder: the checkout on PYTHONPATH is
        # what runs, ahead of this environment's own install.
        return [sys.executable, "-m", "oxidicom"], env | {"PYTHONPATH": str(folder)}

    return replace(
        shipped,
        name=f"{base}@{folder.name}",
        command=command,
        notes=f"as {base}, from the checkout {folder}",
    )


def with_env(receiver: Receiver, extra: dict[str, str]) -> Receiver:
    """``receiver`` with ``extra`` added to its environment (one setting changed)."""
    if not extra:
        return receiver
    command = receiver.command

    def changed(port: int, out: Path) -> tuple[list[str], dict[str, str]]:
        argv, env = command(port, out)
        return argv, env | extra

    return replace(receiver, command=changed)


DEFAULT_RECEIVERS = (
    "oxidicom",
    "oxidicom-workers1",
    "oxidicom-pure",
    "oxidicom-nofsync",
    "storescp-fork-B",
    "storescp",
    "pynetdicom",
)
BASELINE = "storescp-fork-B"
