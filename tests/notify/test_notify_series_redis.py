"""The Redis series store's cost: calls per series and tick, never per file.

A private redis-server counts the commands it runs (INFO commandstats).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import redis

from oxidicom.notify.journal import JournalEntry
from oxidicom.notify.series_redis import RedisSeriesStore
from oxidicom.notify.settle import PendingSeries
from tests.integration.redis_server import RedisServer

FILES_PER_SERIES = 500


def evalsha_calls(server: RedisServer) -> int:
    client = redis.Redis(host=server.host, port=server.port)
    try:
        stats: dict[str, Any] = client.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
    finally:
        client.close()


async def test_a_tick_sends_one_call_per_series_whatever_the_files(server: RedisServer) -> None:
    registrations: Any = SimpleNamespace(journal=SimpleNamespace(adopted=[]))
    # Not started: no heartbeat or renewal runs beside what is measured.
    store = RedisSeriesStore(server.url, registrations, settle=2.0, lease=30.0)
    entry = JournalEntry("main2", {"path": "SERVICES/PACS/P/x"})
    series = [PendingSeries(f"{n:032x}", f"s-{n:032x}-1", "P", f"1.2.{n}", "a-1") for n in range(3)]
    before = evalsha_calls(server)
    # What the hot path notes between two ticks: three series, their files, their release.
    for pending in series:
        store.hold(pending, entry)
        for _ in range(FILES_PER_SERIES):
            store.stored(pending)
        store.release(pending)
    # What is noted goes in two ticks: the first file of each series alone (whoever starts
    # a series publishes progress 1 first), then the rest of its count and its release;
    # each tick a call per series and the heartbeat. However many files.
    await store.stop()
    assert evalsha_calls(server) - before == 2 * (len(series) + 1)
    client = redis.Redis(host=server.host, port=server.port)
    try:
        counts = [client.hget(f"{{oxidicom-series}}:s:{p.digest}", "n") for p in series]
        holders = [
            [f for f in client.hkeys(f"{{oxidicom-series}}:s:{p.digest}") if f.startswith(b"h:")]
            for p in series
        ]
    finally:
        client.close()
    assert counts == [str(FILES_PER_SERIES).encode()] * len(series)
    assert holders == [[]] * len(series)  # released
