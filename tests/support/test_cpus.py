"""CPUs this process may use: affinity, capped by the cgroup quota (oxidicom/support/cpus.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oxidicom.support.cpus import usable_cpus

AFFINITY = len(os.sched_getaffinity(0))
NO_V1 = (Path("/nonexistent/quota"), Path("/nonexistent/period"))


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", AFFINITY),
        ("100000 100000\n", 1),
        ("50000 100000\n", 1),  # half a CPU: still one worker
        ("150000 100000\n", min(AFFINITY, 2)),  # rounded up
        ("6400000 100000\n", AFFINITY),  # more quota than CPUs
        ("garbage\n", AFFINITY),
    ],
)
def test_the_cgroup_v2_quota_caps_the_affinity(tmp_path: Path, cpu_max: str, expected: int) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max)
    assert usable_cpus(quota, NO_V1) == expected


@pytest.mark.parametrize(("quota_us", "expected"), [("-1", AFFINITY), ("100000", 1)])
def test_the_cgroup_v1_quota_when_there_is_no_v2(
    tmp_path: Path, quota_us: str, expected: int
) -> None:
    (tmp_path / "quota").write_text(quota_us + "\n")
    (tmp_path / "period").write_text("100000\n")
    v1 = (tmp_path / "quota", tmp_path / "period")
    assert usable_cpus(tmp_path / "absent", v1) == expected


def test_no_cgroup_files_the_affinity() -> None:
    assert usable_cpus(Path("/nonexistent/cpu.max"), NO_V1) == AFFINITY
