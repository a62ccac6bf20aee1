"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

from benches.flood import ROOT
from benches.flood.receivers import STORESCP, oxidicom_command


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _filesystem(path: Path) -> str:
    """``device type`` of the mount holding ``path`` (longest mount point that prefixes it)."""
    path = path.resolve()
    best, found = "", "unknown"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                device, mount, fstype = line.split()[:3]
                if (path == Path(mount) or Path(mount) in path.parents) and len(mount) > len(best):
                    best, found = mount, f"{fstype} ({device} on {mount})"
    except OSError:
        pass
    return found


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(out_dir: Path, data_dir: Path) -> dict[str, str]:
    """Machine, software versions and the date, as label -> value."""
    rev = _run(["git", "rev-parse", "--short", "HEAD"], ROOT)
    if _run(["git", "status", "--porcelain", "--untracked-files=no"], ROOT):
        rev += " (with uncommitted changes)"
    dcmtk = _run([STORESCP, "--version"]).splitlines()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpus (nproc)": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "dcmtk": dcmtk[0].strip("$ ").removeprefix("dcmtk: ") if dcmtk else "unknown",
        "pynetdicom": _version("pynetdicom"),
        "pydicom": _version("pydicom"),
        "uvloop": _version("uvloop"),
        "oxidicom": f"{_version('oxidicom')}, git {rev}, run as `{' '.join(oxidicom_command())}`",
        "output filesystem": f"{out_dir} — {_filesystem(out_dir)}",
        "data filesystem": f"{data_dir} — {_filesystem(data_dir)}",
    }
