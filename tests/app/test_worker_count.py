"""How many receiver processes run (oxidicom/app/worker_count.py): OXIDICOM_WORKERS."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from oxidicom.app.settings import load_settings
from oxidicom.app.worker_count import WorkerCount, worker_count

NATS = {"OXIDICOM_NATS_ADDRESS": "nats://127.0.0.1:4222"}
RABBIT = {"OXIDICOM_AMQP_ADDRESS": "amqp://guest:guest@127.0.0.1:5672"}
REDIS = {"OXIDICOM_CELERY_BROKER": "redis://127.0.0.1:6379/0"}


def count(tmp_path: Path, cpus: int, **env: str) -> WorkerCount:
    return worker_count(load_settings(env, tmp_path), cpus=cpus)


def test_auto_is_the_default_one_per_cpu_at_most_one_per_four_slots(tmp_path: Path) -> None:
    assert count(tmp_path, 2) == WorkerCount(2)
    assert count(tmp_path, 1) == WorkerCount(1)
    assert count(tmp_path, 16).count == 2  # 8 slots (OXIDICOM_LISTENER_THREADS)
    assert count(tmp_path, 16, OXIDICOM_LISTENER_THREADS="64") == WorkerCount(16)
    assert count(tmp_path, 4, OXIDICOM_WORKERS="auto") == WorkerCount(2)


@pytest.mark.parametrize(
    ("env", "workers"),
    [
        ({**NATS}, 1),  # progress, and nobody to count a split series across processes
        ({**NATS, **RABBIT}, 1),
        ({**NATS, **REDIS}, 2),  # CUBE's: the broker is the series store
        ({**NATS, **RABBIT, "OXIDICOM_SERIES_STORE": "redis://127.0.0.1:6379/1"}, 2),
        ({**NATS, **REDIS, "OXIDICOM_SERIES_STORE": "none"}, 1),
        ({**NATS, "OXIDICOM_SERIES_SETTLE": "0"}, 2),  # each association its own part
        ({**RABBIT}, 2),  # no progress at all
    ],
)
def test_auto_runs_one_process_when_workers_would_count_progress_apart(
    tmp_path: Path, env: dict[str, str], workers: int
) -> None:
    decided = count(tmp_path, 4, **env)
    assert decided.count == workers
    if workers == 1:
        assert decided.level == logging.INFO
        assert decided.note is not None and "without a series store" in decided.note
    else:
        assert decided.note is None


def test_a_number_is_taken_at_its_word_within_the_slots(tmp_path: Path) -> None:
    assert count(tmp_path, 1, OXIDICOM_WORKERS="2") == WorkerCount(2)  # whatever the CPUs
    assert count(tmp_path, 8, OXIDICOM_WORKERS="2", **NATS) == WorkerCount(2)
    capped = count(tmp_path, 8, OXIDICOM_WORKERS="4")
    assert (capped.count, capped.level) == (2, logging.WARNING)
    assert capped.note == (
        "OXIDICOM_WORKERS=4, but with OXIDICOM_LISTENER_THREADS=8 only 2 worker(s): each"
        " holds at least 4 association slots"
    )
