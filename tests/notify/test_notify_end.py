"""The end of an association with thousands of series is background work in chunks.

What would have caught a receiver that stalled every peer for 20 s at the end of a
20 000-series association, without timing anything: count how many series are handled
in one turn of the event loop, and whether any is handled before ``association_ended``
returns.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from oxidicom.notify import lonk
from oxidicom.notify.journal import SeriesJournal
from oxidicom.notify.nats import LonkPublisher
from oxidicom.notify.notifier import ChrisNotifier
from oxidicom.notify.outbox import Outbox
from oxidicom.notify.progress import ProgressPolicy
from oxidicom.notify.registrations import Registrations
from oxidicom.storage.series import SeriesRecord
from tests.storage.test_layout import fields

SERIES = 1000


class LoopTurns:
    """Counts the turns of the running loop (a callback that schedules itself again)."""

    def __init__(self) -> None:
        self.turns = 0
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.turns += 1
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


def registrations_of(tmp_path: Path) -> Registrations:
    outbox = tmp_path / "outbox"
    return Registrations(Outbox(outbox), "q", None, SeriesJournal(outbox, tmp_path / "files"))


def promised(registrations: Registrations, count: int) -> list[SeriesRecord]:
    """``count`` single-instance series of association a-1, each promised (journaled)."""
    records = []
    for n in range(count):
        uid = f"1.2.3.{n}"
        record = SeriesRecord("a-1", "PACS", uid, count=1, progress_sent=1, progress_at=0.0)
        registrations.promise(record, fields(series_instance_uid=uid), f"SERVICES/PACS/{uid}")
        records.append(record)
    return records


async def test_the_end_of_1000_series_returns_at_once_and_goes_on_in_chunks(
    tmp_path: Path,
) -> None:
    registrations = registrations_of(tmp_path)
    turns = LoopTurns()
    done_at: list[int] = []  # the loop turn of each done handed over

    def send(subject: str, payload: bytes, required: bool) -> bool:
        if payload == lonk.done():
            done_at.append(turns.turns)
        return True

    notifier = ChrisNotifier(registrations, None, ProgressPolicy("root", 0.5, send, lambda: True))
    await notifier.start()
    records = promised(registrations, SERIES)

    notifier.association_ended("a-1", records)
    assert done_at == []  # nothing of it was done before association_ended returned
    assert registrations.outbox.names() == []
    await notifier.stop()
    turns.stop()

    assert len(done_at) == SERIES
    # The loop ran between chunks of at most 64 series (a few ms of loop time): a chunk
    # made larger, or none at all, fails here.
    assert max(Counter(done_at).values()) <= 64
    names = registrations.outbox.names()
    assert len(names) == SERIES
    assert list((tmp_path / "outbox" / ".journal").rglob("*.json")) == []


class FakeNats:
    """Stands in for a nats-py client: every publish takes one turn of the loop."""

    is_connected = True
    connected_url = None

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, payload: bytes) -> None:
        self.published.append((subject, payload))
        await asyncio.sleep(0)

    async def flush(self, timeout: int) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_the_end_waits_for_room_in_the_lonk_queue_instead_of_dropping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two required messages per series, 2000 in all, through a queue that holds 100:
    none dropped (CONTRACT section 4: final progress and done are always sent)."""
    client = FakeNats()
    connected = asyncio.Event()

    async def connect() -> FakeNats:
        connected.set()
        return client

    publisher = LonkPublisher("nats://fake", optional_limit=50, required_limit=100)
    monkeypatch.setattr(publisher, "_connect", connect)
    registrations = registrations_of(tmp_path)
    policy = ProgressPolicy("root", 0.5, publisher.offer, publisher.room_for_optional)
    notifier = ChrisNotifier(registrations, publisher, policy)
    await notifier.start()
    await connected.wait()
    records = promised(registrations, SERIES)
    for record in records:
        record.progress_sent = 0  # the final progress is due too

    notifier.association_ended("a-1", records)
    await notifier.stop()

    assert publisher.dropped == 0
    assert len(client.published) == 2 * SERIES
    assert [p for s, p in client.published if s == "root.PACS.1_2_3_7"] == [
        lonk.progress(1),
        lonk.done(),
    ]


async def test_with_settling_series_the_end_of_3000_is_sliced_too(tmp_path: Path) -> None:
    """Series that settle: the end of the association releases them 1024 per loop turn at
    most, and they are settled (registered, LONK done) at most 64 per turn."""
    registrations = registrations_of(tmp_path)
    turns = LoopTurns()
    done_at: list[int] = []

    def send(subject: str, payload: bytes, required: bool) -> bool:
        if payload == lonk.done():
            done_at.append(turns.turns)
        return True

    policy = ProgressPolicy("root", 0.5, send, lambda: True)
    notifier = ChrisNotifier(registrations, None, policy, settle=0.001)
    await notifier.start()
    records = []
    for n in range(3000):
        uid = f"1.2.3.{n}"
        record = SeriesRecord("a-1", "PACS", uid)
        series_dir = f"SERVICES/PACS/{uid}"
        notifier.series_starting(record, fields(series_instance_uid=uid), series_dir)
        (tmp_path / "files" / series_dir).mkdir(parents=True)
        (tmp_path / "files" / series_dir / "1.dcm").write_bytes(b"x")
        notifier.instance_stored(record)
        record.count = 1
        records.append(record)

    notifier.association_ended("a-1", records)
    assert notifier.settler is not None
    assert sum(1 for r in records if r.pending is not None and r.pending.open == 0) <= 1024
    await notifier.stop()
    turns.stop()

    assert len(done_at) == 3000
    assert max(Counter(done_at).values()) <= 64
    assert len(registrations.outbox.names()) == 3000
