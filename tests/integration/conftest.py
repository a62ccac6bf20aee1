from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.receiver import RunningReceiver, start_receiver
from tests.sample_data import require_sample_data

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_tool(path: str) -> str:
    """A real peer program, by full path; skip (fail under CI) when it is missing."""
    if shutil.which(path) is None:
        message = f"{path} is not installed (apt-get install dcmtk orthanc)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RunningReceiver]:
    running = start_receiver(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def sample_data() -> Path:
    return require_sample_data()
