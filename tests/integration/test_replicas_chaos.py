"""A short seeded chaos run of three replicas (see tests/integration/chaos.py).

The long run, thousands of series, is benches/replicas_chaos.py; this one is the same
harness at a size that fits in ``make test``: every anomaly it finds fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.chaos import Chaos, ChaosConfig, chaos_cluster
from tests.integration.services import _unavailable

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("OXIDICOM_CHAOS_SEED", "22"))


async def test_a_short_chaos_run_registers_every_series_once_whole(tmp_path: Path) -> None:
    if not Path("/usr/sbin/nats-server").exists():
        _unavailable("nats-server is not installed")
    config = ChaosConfig(
        seed=SEED,
        rounds=6,
        series_per_round=20,
        max_instances=30,
        kill=0.5,
        pause=0.4,
        extra_env=dict(e.split("=", 1) for e in os.environ.get("OXIDICOM_CHAOS_ENV", "").split()),
    )
    with chaos_cluster(tmp_path) as (net, store):
        report = await Chaos(config, tmp_path, net, store).run()
    print("\n".join(report.lines()))
    assert report.series > 0 and report.kills + report.pauses + report.store_restarts > 0
    assert report.anomalies == [], "\n".join(report.lines())
