"""Where the two public DICOM series of ``shared/data`` are, wherever the checkout is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = (
    os.environ.get("OXIDICOM_SAMPLE_DATA", ""),
    str(_ROOT.parent / "shared" / "data"),
    "/work/shared/data",
)


def sample_data_dir() -> Path | None:
    """The folder holding ``SAG-anon/`` and ``example-dicom-structural/``, if any."""
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / "SAG-anon").is_dir():
            return Path(candidate)
    return None


def require_sample_data() -> Path:
    """The sample data folder; skip the caller (fail under CI=true) when it is missing."""
    found = sample_data_dir()
    if found is None:
        message = (
            "sample DICOM series not found (set OXIDICOM_SAMPLE_DATA to the shared/data folder)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message, allow_module_level=True)
    return found
