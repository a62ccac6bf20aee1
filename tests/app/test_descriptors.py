"""The connection caps fit under the descriptor limit (oxidicom.app.descriptors)."""

from __future__ import annotations

import errno
from pathlib import Path

from oxidicom import telemetry
from oxidicom.app.descriptors import PER_SLOT, RESERVE, budget
from oxidicom.app.settings import load_settings
from oxidicom.telemetry import exhaustion

HTTP = {"OXIDICOM_DICOMWEB_PORT": "0", "OXIDICOM_DICOMWEB_ADDRESS": "127.0.0.1"}


def settings(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    return load_settings(env, cwd=tmp_path)


def worst_case(found, slots: int, listeners: int, auth: int) -> int:  # type: ignore[no-untyped-def]
    return RESERVE + PER_SLOT * slots + auth + (found.max_pending + found.backlog) * listeners


def test_the_common_soft_limit_keeps_the_configured_cap(tmp_path: Path) -> None:
    found = budget(settings(tmp_path, **HTTP), 1024, 1024)
    assert found.max_pending == 64 and found.warning is None
    assert worst_case(found, 16, 2, 16) <= 1024


def test_a_low_limit_lowers_the_caps_so_that_everything_fits(tmp_path: Path) -> None:
    env = {"OXIDICOM_DICOMWEB_PORT": "0", "OXIDICOM_DICOMWEB_ADDRESS": "127.0.0.1"}
    env["OXIDICOM_MAX_PENDING_CONNECTIONS"] = "1000"
    for soft in (256, 512, 2048):
        found = budget(settings(tmp_path, **env), soft, 4096)
        assert found.max_pending < 1000
        assert worst_case(found, 16, 2, 16) <= soft
        assert "lowered to" in (found.warning or "")


def test_a_limit_too_low_for_the_slots_is_said(tmp_path: Path) -> None:
    found = budget(settings(tmp_path, OXIDICOM_LISTENER_THREADS="100"), 256, 256)
    assert found.warning is not None and "too low" in found.warning


async def test_emfile_is_counted_and_said_once_per_interval(caplog) -> None:  # type: ignore[no-untyped-def]
    before = telemetry.TALLIES.descriptors_exhausted["test"]
    for _ in range(100):
        assert exhaustion.report(OSError(errno.EMFILE, "Too many open files"), "test")
    assert not exhaustion.report(OSError(errno.ENOSPC, "No space"), "test")
    assert telemetry.TALLIES.descriptors_exhausted["test"] - before == 100
    said = [r for r in caplog.records if "out of file descriptors" in r.getMessage()]
    assert len(said) == 1
    exhaustion.flush()
    said = [r for r in caplog.records if "out of file descriptors" in r.getMessage()]
    assert len(said) == 2 and "99 more" in said[1].getMessage()
