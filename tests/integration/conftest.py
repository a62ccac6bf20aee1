from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.receiver import RunningReceiver, start_receiver
from tests.sample_data import require_sample_data

IN_CI = os.environ.get("CI", "").lower() == "true"
ECHOSCU = "/usr/bin/echoscu"


def require_tool(path: str) -> str:
    """A real peer program, by full path; skip (fail under CI) when it is missing."""
    if shutil.which(path) is None:
        message = f"{path} is not installed (apt-get install dcmtk orthanc)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def echoscu(port: int, *options: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """dcmtk's echoscu to the receiver on ``port`` (called AE ChRIS), output captured."""
    return subprocess.run(
        [ECHOSCU, *options, "-aec", "ChRIS", "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RunningReceiver]:
    running = start_receiver(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def sample_data() -> Path:
    return require_sample_data()
