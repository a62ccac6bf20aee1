"""The Redis series store's decisions, with the interleavings forced (issue 22).

A private redis-server runs the real scripts; the store is not started (no heartbeat,
renewal or watch task runs beside the calls made here), its registrations are a fake
that records what it was asked to register. The store is seasoned: its grace after a
first use (tested in tests/integration/test_replicas.py) is not what these test.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from oxidicom.notify import lonk
from oxidicom.notify.journal import JournalEntry
from oxidicom.notify.progress import ProgressPolicy
from oxidicom.notify.registrations import HANDED_OVER
from oxidicom.notify.series_redis import RedisSeriesStore
from oxidicom.notify.series_store import WATCHED
from oxidicom.notify.settle import PendingSeries
from tests.integration.redis_server import RedisServer

DIGEST = "ab" * 16
ENTRY = JournalEntry("main2", {"path": "SERVICES/PACS/P/x"})
FILES = 3


class FakeRegistrations:
    """What the store asked to register (each call's keys), and what it withdrew."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.journal = SimpleNamespace(adopted=[])
        self.claimed: list[list[str]] = []
        self.forgotten: list[str] = []
        self._gate = gate

    async def register_claimed(self, keys: list[str]) -> dict[str, int | str]:
        self.claimed.append(keys)
        if self._gate is not None:
            await self._gate.wait()  # held while another decision is asked
        return dict.fromkeys(keys, FILES)

    async def forget(self, keys: list[str]) -> None:
        self.forgotten += keys


def incarnation(number: int) -> PendingSeries:
    return PendingSeries(DIGEST, f"s-{DIGEST}-{number}", "P", "1.2.3", f"a-{number}")


async def released(store: RedisSeriesStore, series: PendingSeries) -> None:
    """A hold of FILES files, released, in the store (two ticks: the first file alone)."""
    store.hold(series, ENTRY)
    for _ in range(FILES):
        store.stored(series)
    store.release(series)
    for _ in range(2):
        await store._sync_once()
    assert not store._dirty


async def test_two_holds_of_one_replica_decided_in_one_call_register_once(
    server: RedisServer,
) -> None:
    """An older hold watched and a newer one settling, of one replica, due together:
    one is registered, the other hands over (not both 'mine')."""
    registrations = FakeRegistrations()
    store = RedisSeriesStore(server.url, registrations, settle=0.0, lease=30.0)  # type: ignore[arg-type]
    older, newer = incarnation(1), incarnation(2)
    await released(store, older)
    outcomes = dict(await store._decide([older, newer], force=False, orphans=set()))
    assert outcomes == {older: FILES, newer: WATCHED}  # the claim is the older one's
    # Asked again once the older one is marked registered: handed over, withdrawn.
    again = dict(await store._decide([newer], force=False, orphans=set()))
    await store.stop()
    assert registrations.claimed == [[older.key]]
    assert again == {newer: HANDED_OVER}
    assert set(registrations.forgotten) == {newer.key}  # (and by its watch, at the stop)


async def test_a_claim_in_progress_is_not_given_to_another_hold_of_the_same_replica(
    server: RedisServer,
) -> None:
    """The watch task and the settle task ask about one series in two calls; the second
    call is answered while the first one's registration is being written: it waits
    (the claim is exclusive, the claimant's own other holds included)."""
    gate = asyncio.Event()
    registrations = FakeRegistrations(gate)
    store = RedisSeriesStore(server.url, registrations, settle=0.0, lease=30.0)  # type: ignore[arg-type]
    older, newer = incarnation(1), incarnation(2)
    await released(store, older)
    first = asyncio.create_task(store._decide([older], force=False, orphans=set()))
    while not registrations.claimed:  # the first decision is registering
        await asyncio.sleep(0)
    # Bounded: told 'mine' too, it would wait for the gate (a second registration).
    second = await asyncio.wait_for(store._decide([newer], force=False, orphans=set()), 10)
    gate.set()
    assert await first == [(older, FILES)]
    await store.stop()
    assert registrations.claimed == [[older.key]]
    assert second == [(newer, WATCHED)]


async def test_a_progress_the_rate_limit_dropped_is_not_counted_as_sent(
    server: RedisServer,
) -> None:
    """The store says publish 3; the publisher's rate limit drops it: the registration
    must then send the final progress 3 before done (it was left out when the store
    counted 3 as sent)."""
    sent: list[bytes] = []

    def send(subject: str, payload: bytes, required: bool) -> bool:
        sent.append(payload)
        return True

    policy = ProgressPolicy("root", 3600.0, send, lambda: True)
    registrations = FakeRegistrations()
    store = RedisSeriesStore(server.url, registrations, settle=0.0, lease=30.0)  # type: ignore[arg-type]
    store._progress = policy
    series = incarnation(1)
    store.hold(series, ENTRY)
    store.stored(series)
    await store._sync_once()
    for _ in range(FILES - 1):
        store.stored(series)
    await store._sync_once()  # the store says: publish 3
    store.release(series)
    await store._sync_once()
    assert not store._dirty
    assert sent == [lonk.progress(1)]  # 3 was dropped: within the interval of 1
    outcomes = dict(await store._decide([series], force=False, orphans=set()))
    await store.stop()
    assert outcomes == {series: FILES}
    series.count = FILES  # as the notifier does with the registration's ndicom
    policy.ended(series)
    assert sent == [lonk.progress(1), lonk.progress(FILES), lonk.done()]


async def test_a_store_restarted_empty_is_told_again_which_series_were_registered(
    server: RedisServer,
) -> None:
    """Replica one registers a series that replica two held too (released, its decision
    to come); the store restarts empty. One's next heartbeat finds the store's silence
    (a new ``since``) and marks the series registered again: two is told 'gone', not
    left to find it unknown and register it a second time."""
    import redis

    one_registrations, two_registrations = FakeRegistrations(), FakeRegistrations()
    one = RedisSeriesStore(server.url, one_registrations, settle=0.0, lease=30.0)  # type: ignore[arg-type]
    two = RedisSeriesStore(server.url, two_registrations, settle=0.0, lease=30.0)  # type: ignore[arg-type]
    mine, theirs = incarnation(1), incarnation(2)  # one series, a hold on each replica
    await released(one, mine)
    await released(two, theirs)
    assert dict(await one._decide([mine], force=False, orphans=set())) == {mine: FILES}
    client = redis.Redis(host=server.host, port=server.port)
    try:
        client.flushall()  # the store restarted without its data
    finally:
        client.close()
    await one._sync_once()  # its heartbeat (nothing else to send)
    server.seasoned()  # past the store's grace after a silence (not what is tested here)
    outcomes = dict(await two._decide([theirs], force=False, orphans=set()))
    await one.stop()
    await two.stop()
    assert outcomes == {theirs: HANDED_OVER}
    assert two_registrations.claimed == []
