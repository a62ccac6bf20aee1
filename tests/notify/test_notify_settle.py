"""Series across associations: the settle queue, and who of several holders registers.

The holders here are journals of one outbox, each locked like a live process's (a
``flock`` held on another open file conflicts even within one process), so two or three
"processes" are simulated with real files and real locks.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import os
from pathlib import Path

import pytest

from oxidicom.notify import lonk
from oxidicom.notify.journal import SETTLE_LOCK_NAME, SeriesJournal, series_digest
from oxidicom.notify.notifier import ChrisNotifier
from oxidicom.notify.outbox import Outbox
from oxidicom.notify.progress import ProgressPolicy
from oxidicom.notify.registrations import HANDED_OVER, Registrations
from oxidicom.notify.settle import SeriesSettler
from oxidicom.storage.series import SeriesRecord
from tests.storage.test_layout import fields

SERIES_DIR = "SERVICES/PACS/PACS/p/s/00001-series-abcdef0"
UID = "1.2.3.4"


def NOT_HELD(digest: str) -> bool:  # noqa: N802 - a constant, as the tests read it
    return False


# -- the in-process queue ------------------------------------------------------------------


def test_a_series_settles_interval_after_its_last_association_ends() -> None:
    settler = SeriesSettler(2.0)
    series = settler.new("d1", "PACS", UID, "a-1")
    settler.hold(series)
    settler.opened(series)
    settler.opened(series)  # two associations at once
    assert settler.released(series, now=10.0) is False  # one still stores into it
    assert settler.next_due() is None
    assert settler.released(series, now=11.0) is True  # the queue was empty
    assert settler.next_due() == 13.0
    assert settler.take_due(12.9, 64) == []
    assert settler.take_due(13.0, 64) == [series]
    assert settler.held("d1") is None and len(settler) == 0


def test_an_association_that_comes_back_before_the_settle_keeps_it_held() -> None:
    settler = SeriesSettler(2.0)
    series = settler.new("d1", "PACS", UID, "a-1")
    settler.hold(series)
    settler.opened(series)
    settler.released(series, now=10.0)
    settler.opened(series)  # the PACS's next association, 1 s later
    assert settler.next_due() is None  # the stale queue entry is skipped
    settler.released(series, now=11.0)
    assert settler.take_due(12.5, 64) == []  # due at 13, not 12
    assert settler.take_due(13.0, 64) == [series]
    assert series.associations == 2


def test_take_due_takes_at_most_the_limit_in_deadline_order() -> None:
    settler = SeriesSettler(1.0)
    held = []
    for n in range(5):
        series = settler.new(f"d{n}", "PACS", f"1.2.{n}", "a-1")
        settler.hold(series)
        settler.opened(series)
        settler.released(series, now=float(n))
        held.append(series)
    assert settler.take_due(100.0, 2) == held[:2]
    assert settler.take_due(3.5, 64) == held[2:3]  # due at 3, 4 and 5: only the first
    assert settler.next_due() == 4.0


def test_a_newer_incarnation_takes_over_the_counts_of_the_one_handed_to_it() -> None:
    settler = SeriesSettler(1.0)
    first = settler.new("d1", "PACS", UID, "a-1")
    settler.hold(first)
    settler.opened(first)
    first.count, first.progress_sent = 96, 90
    settler.released(first, now=0.0)
    assert settler.take_due(1.0, 64) == [first]
    second = settler.new("d1", "PACS", UID, "a-2")  # an association during the settle
    assert second.key != first.key
    settler.hold(second)
    settler.opened(second)
    second.count, second.progress_sent = 3, 1
    settler.handed_over(first)
    assert (second.count, second.progress_sent, second.associations) == (99, 90, 2)


# -- several holders of one outbox ------------------------------------------------------------


def holder(tmp_path: Path) -> Registrations:
    """A receiver process's registrations: its own journal folder, locked, in one outbox."""
    outbox = tmp_path / "outbox"
    journal = SeriesJournal(outbox, tmp_path / "files")
    registrations = Registrations(Outbox(outbox), "q", None, journal)
    registrations.outbox.prepare()
    journal.prepare()
    return registrations


def store_files(tmp_path: Path, names: range) -> None:
    folder = tmp_path / "files" / SERIES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / f"{n:04d}-1.2.3.4.{n}.dcm").write_bytes(b"x")


def hold(registrations: Registrations, settler: SeriesSettler, association: str) -> str:
    """Journal this process's hold on the series, as its first file would."""
    series = settler.new(series_digest(SERIES_DIR), "PACS", UID, association)
    record = SeriesRecord(association, "PACS", UID)
    registrations.promise(record, fields(series_instance_uid=UID), SERIES_DIR, key=series.key)
    return series.key


def registered(tmp_path: Path) -> list[int]:
    outbox = tmp_path / "outbox"
    return [json.loads(p.read_text())["kwargs"]["ndicom"] for p in sorted(outbox.glob("*.json"))]


async def test_of_two_live_holders_the_first_to_settle_hands_over_and_the_last_registers(
    tmp_path: Path,
) -> None:
    one, two = holder(tmp_path), holder(tmp_path)
    key_one = hold(one, SeriesSettler(1.0), "a-1")
    key_two = hold(two, SeriesSettler(1.0), "b-1")
    store_files(tmp_path, range(1, 97))  # the first half, through process one
    assert await one.settle([key_one], NOT_HELD) == {key_one: HANDED_OVER}
    assert registered(tmp_path) == []
    store_files(tmp_path, range(97, 193))  # the second half, through process two
    assert await two.settle([key_two], NOT_HELD) == {key_two: 192}
    assert registered(tmp_path) == [192]
    assert list(one.journal.work_dir.path.glob("*.json")) == []
    assert list(two.journal.work_dir.path.glob("*.json")) == []


async def test_a_dead_holders_entry_goes_with_the_registration_of_a_live_one(
    tmp_path: Path,
) -> None:
    dead, live = holder(tmp_path), holder(tmp_path)
    hold(dead, SeriesSettler(1.0), "a-1")
    key = hold(live, SeriesSettler(1.0), "b-1")
    store_files(tmp_path, range(1, 11))
    dead.journal.release()  # killed: its folder stays, unlocked, its entry in it
    assert await live.settle([key], NOT_HELD) == {key: 10}
    # A process starting later finds nothing of the dead one left to register.
    assert holder(tmp_path).journal.recover(Outbox(tmp_path / "outbox")) == 0
    assert registered(tmp_path) == [10]


async def test_the_recovery_of_a_dead_holder_leaves_the_series_to_a_live_one(
    tmp_path: Path,
) -> None:
    dead, live = holder(tmp_path), holder(tmp_path)
    hold(dead, SeriesSettler(1.0), "a-1")
    key = hold(live, SeriesSettler(1.0), "b-1")
    store_files(tmp_path, range(1, 11))
    dead.journal.release()
    starting = holder(tmp_path)
    assert starting.journal.recover(Outbox(tmp_path / "outbox")) == 0
    assert registered(tmp_path) == []
    store_files(tmp_path, range(11, 21))
    assert await live.settle([key], NOT_HELD) == {key: 20}
    assert registered(tmp_path) == [20]


async def test_a_dead_holder_alone_is_registered_once_at_the_next_start(tmp_path: Path) -> None:
    dead = holder(tmp_path)
    settler = SeriesSettler(1.0)
    hold(dead, settler, "a-1")
    hold(dead, settler, "a-2")  # two incarnations of one series in the dead process
    store_files(tmp_path, range(1, 6))
    dead.journal.release()
    starting = holder(tmp_path)
    assert starting.journal.recover(Outbox(tmp_path / "outbox")) == 1
    assert registered(tmp_path) == [5]


# -- the notifier: one registration, one done, progress across associations ---------------------


async def test_two_associations_of_one_series_give_one_registration_and_one_done(
    tmp_path: Path,
) -> None:
    registrations = holder(tmp_path)
    sent: list[bytes] = []
    done = asyncio.Event()

    def send(subject: str, payload: bytes, required: bool) -> bool:
        sent.append(payload)
        if payload == lonk.done():
            done.set()
        return True

    progress = ProgressPolicy("root", 0.0, send, lambda: True)
    notifier = ChrisNotifier(registrations, None, progress, settle=0.05)
    await notifier.start()
    try:
        number = 0
        for association in ("a-1", "a-2"):
            record = SeriesRecord(association, "PACS", UID)
            notifier.series_starting(record, fields(series_instance_uid=UID), SERIES_DIR)
            for _ in range(3):
                number += 1
                store_files(tmp_path, range(number, number + 1))
                notifier.instance_stored(record)
            record.count = 3
            notifier.association_ended(association, [record])
        await asyncio.wait_for(done.wait(), 10)  # the settle timer fired by itself
    finally:
        await notifier.stop()
    assert registered(tmp_path) == [6]
    assert sent == [lonk.progress(n) for n in range(1, 7)] + [lonk.done()]
    assert list(registrations.journal.work_dir.path.glob("*.json")) == []


async def test_a_stop_settles_every_held_series_at_once(tmp_path: Path) -> None:
    registrations = holder(tmp_path)
    notifier = ChrisNotifier(registrations, None, None, settle=3600.0)
    await notifier.start()
    record = SeriesRecord("a-1", "PACS", UID)
    notifier.series_starting(record, fields(series_instance_uid=UID), SERIES_DIR)
    store_files(tmp_path, range(1, 3))
    notifier.instance_stored(record)
    notifier.instance_stored(record)
    notifier.association_ended("a-1", [record])
    assert registered(tmp_path) == []
    await notifier.stop()
    assert registered(tmp_path) == [2]


async def test_without_locks_on_the_filesystem_a_series_is_still_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A filesystem that refuses flock must not keep series from being registered."""
    one = holder(tmp_path)
    key = hold(one, SeriesSettler(1.0), "a-1")
    store_files(tmp_path, range(1, 4))
    real_flock = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(SETTLE_LOCK_NAME):
            raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    with caplog.at_level(logging.WARNING, "oxidicom.registrations"):
        assert await one.settle([key], NOT_HELD) == {key: 3}
    assert registered(tmp_path) == [3]
    assert "processes sharing this outbox may register" in caplog.text
