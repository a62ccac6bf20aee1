"""How many receiver processes to run: ``OXIDICOM_WORKERS``, and what ``auto`` picks.

``auto`` (the default) runs one worker per CPU this process may use (its cgroup's quota
included, :mod:`oxidicom.support.cpus`): on a machine of several CPUs, one process keeps
only one of them busy with Python. It runs one process alone in one case: LONK progress
goes to NATS and a series is counted only by the process that stores it (no series
store: ``OXIDICOM_SERIES_STORE``, by default the Celery broker's URL when it speaks
Redis). Workers then still register a series split over associations once, whole (they
decide under the outbox's lock), but each would publish progress for its own files, and
CONTRACT section 4 wants one count per series that never goes back. With the series
store they count together, as replicas on several hosts do; without NATS there is no
progress to count; with ``OXIDICOM_SERIES_SETTLE=0`` each association reports its own
part anyway.

A number asks for that many, and :func:`~oxidicom.scp.shares.workers_for` allows at most
one per 4 association slots either way.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from oxidicom.app.settings import MAX_WORKERS, Settings
from oxidicom.notify.broker_url import series_store_url
from oxidicom.scp.shares import MIN_SLOTS_PER_WORKER, workers_for
from oxidicom.support.cpus import usable_cpus


class WorkerCount(NamedTuple):
    """How many, and why not more (one log line, at ``level``), or None."""

    count: int
    note: str | None = None
    level: int = logging.INFO


def worker_count(settings: Settings, cpus: int | None = None) -> WorkerCount:
    """The worker processes to run for ``settings`` on ``cpus`` usable CPUs (default:
    this process's)."""
    slots = settings.max_associations
    asked = settings.workers
    if asked is not None:
        count = workers_for(asked, slots)
        if count == asked:
            return WorkerCount(count)
        return WorkerCount(
            count,
            f"OXIDICOM_WORKERS={asked}, but with OXIDICOM_LISTENER_THREADS={slots} only"
            f" {count} worker(s): each holds at least {MIN_SLOTS_PER_WORKER} association slots",
            logging.WARNING,
        )
    wanted = min(usable_cpus() if cpus is None else cpus, MAX_WORKERS)
    if wanted > 1 and not progress_counted_across_processes(settings):
        return WorkerCount(
            1,
            f"OXIDICOM_WORKERS=auto: one process, not {workers_for(wanted, slots)}: LONK"
            " progress goes to NATS, and without a series store (OXIDICOM_SERIES_STORE)"
            " each process would count only its own files of a series",
        )
    return WorkerCount(workers_for(wanted, slots))


def progress_counted_across_processes(settings: Settings) -> bool:
    """Whether several processes keep CONTRACT section 4's count per series: there is
    none to keep (no NATS, or each association reports its own part), or the series
    store counts it."""
    if not settings.nats_address or settings.series_settle <= 0:
        return True
    return series_store_url(settings) is not None
