"""How many CPUs this process may use: its affinity, and its cgroup's CPU quota.

A container limited to one CPU by a quota (Kubernetes ``resources.limits.cpu``, podman
``--cpus``) still sees every CPU of its host in its affinity: one worker per CPU of a
64-core host would then share one CPU's time, each with its own memory.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

#: cgroup v2's quota file, then cgroup v1's pair (microseconds per period).
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (
    Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
)


def usable_cpus(cgroup_v2: Path = _CGROUP_V2, cgroup_v1: tuple[Path, Path] = _CGROUP_V1) -> int:
    """CPUs in this process's affinity, no more than its cgroup's quota (rounded up)."""
    cpus = len(os.sched_getaffinity(0))
    quota = _quota(cgroup_v2, cgroup_v1)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _quota(cgroup_v2: Path, cgroup_v1: tuple[Path, Path]) -> float | None:
    """The CPU quota in CPUs, or None without one (or when it cannot be read)."""
    try:
        limit, _, period = cgroup_v2.read_text().partition(" ")
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    try:
        limit_us = int(cgroup_v1[0].read_text())
        period_us = int(cgroup_v1[1].read_text())
    except (OSError, ValueError):
        return None
    return None if limit_us <= 0 or period_us <= 0 else limit_us / period_us
