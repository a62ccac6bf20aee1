"""The Makefile's installs: quiet, without setuptools' editable-install banner."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What setuptools says at every editable install (setuptools/command/editable_wheel.py).
BANNER = (
    "Editable installation.\n!!\n\n"
    "        ********************************************************************************\n"
    "        Please be careful with folders in your working directory with the same\n"
    "        name as your package as they may take precedence during imports.\n"
)


def _install_lines(tmp_path: Path) -> list[str]:
    venv = tmp_path / "venv"
    stamps = [f"{venv}/.runtime-installed", f"{venv}/.test-installed", f"{venv}/.bench-installed"]
    dry = subprocess.run(
        ["make", "-n", "-B", f"VENV={venv}", *stamps],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line for line in dry.stdout.splitlines() if " -e " in line]


def test_every_editable_install_silences_the_banner(tmp_path: Path) -> None:
    lines = _install_lines(tmp_path)
    assert len(lines) == 3
    for line in lines:
        assert line.startswith('PYTHONWARNINGS="ignore:Editable installation" '), line
        assert "pip install --quiet -e" in line


def test_the_filter_drops_the_banner_and_nothing_else(tmp_path: Path) -> None:
    (line, *_) = _install_lines(tmp_path)
    setting = shlex.split(line)[0]
    name, _, value = setting.partition("=")
    assert name == "PYTHONWARNINGS"
    code = (
        "import sys, warnings\n"
        "class InformationOnly(UserWarning): pass\n"
        "warnings.warn(sys.argv[1], InformationOnly)\n"
        "warnings.warn('Deprecated: something else', UserWarning)\n"
    )

    def run(environ: dict[str, str]) -> str:
        return subprocess.run(
            [sys.executable, "-c", code, BANNER],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", **environ},
        ).stderr

    filtered = run({"PYTHONWARNINGS": value})
    assert "Please be careful with folders" not in filtered
    assert "Deprecated: something else" in filtered
    # Without the filter the banner is shown: the check above is not vacuous.
    assert "Please be careful with folders" in run({})
