"""Replicas on several hosts: a series split across them is registered once, whole.

Two receiver processes with their own outboxes (two pods, each with its own volume) and
one FILES_ROOT (the RWX volume), coordinated through a private redis-server
(``OXIDICOM_SERIES_STORE``). SAG-anon (192 files) is sent by dcmtk's storescu in halves,
one half to each replica: one after the other, at once, and one replica getting one
association per file beside the other. A real Celery worker runs CUBE's task and a NATS
subscriber collects the LONK messages. Without the store each of these gives two
registrations (the issue's table).
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.association import Association

from tests.integration.pynetdicom_scu import scu_only
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.redis_server import RedisServer, redis_server
from tests.integration.services import (
    CeleryWorker,
    LonkCollector,
    celery_worker,
    lonk_collector,
    outbox_entries,
)
from tests.integration.test_split_series import (
    WHOLE,
    assert_one_whole_series,
    env_for,
    halves,  # noqa: F401 - a fixture
    registered,
    storescu,
)
from tests.sample_data import PACS, SAG_UID

pytestmark = pytest.mark.integration


@pytest.fixture
def worker() -> Iterator[CeleryWorker]:
    with celery_worker() as running:
        yield running


@pytest.fixture
async def lonk() -> AsyncIterator[LonkCollector]:
    async with lonk_collector() as collector:
        yield collector


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        server.seasoned()
        yield server


async def replica(tmp: Path, name: str, env: dict[str, str]) -> RunningReceiver:
    """A replica: its own outbox, the shared FILES_ROOT."""
    env = env | {
        "OXIDICOM_FILES_ROOT": str(tmp / "files"),
        "OXIDICOM_OUTBOX_DIR": str(tmp / name / "outbox"),
    }
    receiver = await asyncio.to_thread(start_receiver, tmp / name, env)
    await asyncio.to_thread(receiver.wait_for_log, r"AMQP connected")
    await asyncio.to_thread(receiver.wait_for_log, r"series store \S+ reached")
    return receiver


async def stop(*receivers: RunningReceiver) -> None:
    for receiver in receivers:
        assert await asyncio.to_thread(receiver.stop) == 0, receiver.log()
        assert outbox_entries(receiver.outbox_dir) == [], receiver.log()


def replica_env(
    worker: CeleryWorker, lonk: LonkCollector, store: RedisServer, **extra: str
) -> dict[str, str]:
    return env_for(
        worker,
        lonk,
        OXIDICOM_SERIES_STORE=store.url,
        OXIDICOM_SERIES_SETTLE="1s",
        **extra,
    )


def assert_never_backwards(messages: list[str]) -> None:
    counts = [int(m) for m in messages if m.isdigit()]
    assert counts == sorted(counts), counts
    assert len(counts) == len(set(counts)), counts


@pytest.mark.parametrize("how", ["one-after-the-other", "at-once", "per-file"])
async def test_halves_through_two_replicas_are_registered_once_whole(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],  # noqa: F811
    worker: CeleryWorker,
    lonk: LonkCollector,
    store: RedisServer,
    how: str,
) -> None:
    env = replica_env(worker, lonk, store)
    one, two = await asyncio.gather(replica(tmp_path, "a", env), replica(tmp_path, "b", env))
    subject = lonk.subject(PACS, SAG_UID)
    try:
        if how == "one-after-the-other":
            await storescu(one.port, halves[0])
            await storescu(two.port, halves[1])
        elif how == "at-once":
            await asyncio.gather(storescu(one.port, halves[0]), storescu(two.port, halves[1]))
        else:

            async def file_by_file() -> None:
                for file in halves[0]:
                    await storescu(one.port, [file])

            await asyncio.gather(file_by_file(), storescu(two.port, halves[1]))
        await lonk.wait_until(lambda: "done" in lonk.decoded(subject))
    finally:
        await stop(one, two)
    assert await registered(worker) == [WHOLE]
    await lonk.settle()
    messages = lonk.decoded(subject)
    assert_one_whole_series(lonk, messages)
    assert_never_backwards(messages)
    logs = one.log() + two.log()
    assert logs.count(f"series finished: {WHOLE} file(s) of {SAG_UID}") == 1


@pytest.mark.parametrize("together", [False, True], ids=["one-after-the-other", "at-once"])
async def test_two_workers_with_the_store_count_progress_for_the_whole_series(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],  # noqa: F811
    worker: CeleryWorker,
    lonk: LonkCollector,
    store: RedisServer,
    together: bool,
) -> None:
    """OXIDICOM_WORKERS=2 sharing one outbox, with the series store (what the default,
    auto, runs when the broker speaks Redis, as CUBE's does). The halves land in
    different workers; LONK progress still counts the whole series: 1 once, never
    backwards, then the whole count and done. (Without the store each worker counts its
    own files: 1, 1, 2, 2, ...)"""
    env = replica_env(worker, lonk, store, OXIDICOM_WORKERS="2")
    receiver = await asyncio.to_thread(start_receiver, tmp_path, env)
    await asyncio.to_thread(receiver.wait_for_log_count, r"series store \S+ reached", 2)
    subject = lonk.subject(PACS, SAG_UID)
    try:
        if together:
            await asyncio.gather(*(storescu(receiver.port, half) for half in halves))
        else:  # one peer's associations one after the other: to each worker in turn
            for half in halves:
                await storescu(receiver.port, half)
        await lonk.wait_until(lambda: "done" in lonk.decoded(subject))
    finally:
        await stop(receiver)
    assert await registered(worker) == [WHOLE]
    await lonk.settle()
    messages = lonk.decoded(subject)
    assert_one_whole_series(lonk, messages)
    assert_never_backwards(messages)
    assert messages[0] == "1"
    workers = set(re.findall(r"\[(\w+)-\d+\] association from .* accepted", receiver.log()))
    assert len(workers) == 2, receiver.log()  # one half in each


def open_association(
    port: int, files: list[Path], later: list[Path] = (), host: str = "127.0.0.1"
) -> Association:
    """An association (pynetdicom) that stores ``files`` and is left open (for ``later``
    too: :func:`store_more`)."""
    contexts = set()
    for file in [*files, *later]:
        meta = pydicom.dcmread(file, stop_before_pixels=True)
        contexts.add((meta.SOPClassUID, meta.file_meta.TransferSyntaxUID))
    ae = AE(ae_title=PACS)
    for context in contexts:
        ae.add_requested_context(*context)
    assoc = scu_only(ae.associate(host, port, ae_title="ChRIS"))
    assert assoc.is_established
    store_more(assoc, files)
    return assoc


def store_more(assoc: Association, files: list[Path]) -> None:
    for file in files:
        status = assoc.send_c_store(pydicom.dcmread(file))
        assert status.Status == 0x0000, status


@pytest.mark.parametrize("split", [True, False], ids=["split", "whole-on-the-dead-one"])
async def test_a_replica_killed_holding_a_series_is_registered_whole_by_another(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],  # noqa: F811
    worker: CeleryWorker,
    lonk: LonkCollector,
    store: RedisServer,
    split: bool,
) -> None:
    """SIGKILL while an association of the killed replica is open (its outbox volume
    gone): its hold lapses after the lease, and the other replica registers the series
    once, whole. Split: the survivor stored the other half and watches the series; whole:
    the survivor never saw it and finds it in the store's sweep. The dead replica coming
    back on its old outbox registers nothing more."""
    env = replica_env(worker, lonk, store, OXIDICOM_SERIES_LEASE="3s")
    one, two = await asyncio.gather(replica(tmp_path, "a", env), replica(tmp_path, "b", env))
    subject = lonk.subject(PACS, SAG_UID)
    mine = halves[0] if split else [*halves[0], *halves[1]]
    try:
        if split:
            await storescu(two.port, halves[1])
        assoc = await asyncio.to_thread(open_association, one.port, mine)
        assert await asyncio.to_thread(one.kill9) == -signal.SIGKILL
        assoc.abort()
        await asyncio.to_thread(worker.wait_for_registrations, 1, 60)
        await lonk.wait_until(lambda: "done" in lonk.decoded(subject), timeout=60)
    finally:
        one.stop()
        await stop(two)
    assert await registered(worker) == [WHOLE]
    assert outbox_entries(one.outbox_dir) == []  # the dead one registered nothing
    # The dead replica comes back on its old outbox: its hold is withdrawn, not registered.
    again = await replica(tmp_path, "a", env)
    held = one.outbox_dir / ".journal"
    try:
        await asyncio.to_thread(again.wait_for_log, r"hold\(s\) on series left by earlier runs")
        # The store's answer withdraws it: wait for that, not for a stop that may come
        # before the worker has asked (no event to await for a file's removal).
        async with asyncio.timeout(30):
            while list(held.glob("*/*.json")):
                await asyncio.sleep(0.05)
    finally:
        await stop(again)
    assert await registered(worker) == [WHOLE]
    assert list(held.glob("*/*.json")) == []
    await lonk.settle()
    assert_one_whole_series(lonk, lonk.decoded(subject))


# -- store faults ----------------------------------------------------------------------


@pytest.mark.parametrize("persist", [False, True], ids=["empty", "persisted"])
async def test_a_store_restarting_during_a_push_never_gives_a_partial_registration(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],  # noqa: F811
    worker: CeleryWorker,
    lonk: LonkCollector,
    persist: bool,
) -> None:
    """Replica a holds the series in an open association (a quarter stored) while the
    store restarts (empty, or from its append-only file); replica b then stores the other
    half and settles long before a renews its hold (every 10 s with the default lease);
    then a stores its second quarter. b must not register the three quarters it sees:
    after a silence, no decision until every replica could hold again."""
    first, second = halves[0][: WHOLE // 4], halves[0][WHOLE // 4 :]
    with redis_server(tmp_path / "redis", persist=persist) as store:
        store.seasoned()
        env = replica_env(worker, lonk, store, OXIDICOM_LOG_LEVEL="DEBUG")
        one, two = await asyncio.gather(replica(tmp_path, "a", env), replica(tmp_path, "b", env))
        subject = lonk.subject(PACS, SAG_UID)
        try:
            assoc = await asyncio.to_thread(open_association, one.port, first, second)
            # Its count is in the store (progress is published from it): nothing of a's
            # is left to send, so only its renewal would hold the series again.
            await lonk.wait_until(lambda: str(len(first)) in lonk.decoded(subject))
            await asyncio.to_thread(store.restart)
            await storescu(two.port, halves[1])
            # b's settle has been decided: registered, or waiting for the store's grace.
            await asyncio.to_thread(two.wait_for_log, r"registration of series|decision waits", 60)
            await asyncio.to_thread(store_more, assoc, second)
            await asyncio.to_thread(assoc.release)
            await lonk.wait_until(lambda: "done" in lonk.decoded(subject), timeout=90)
        finally:
            await stop(one, two)
    assert await registered(worker) == [WHOLE]
    await lonk.settle()
    assert lonk.decoded(subject).count("done") == 1


async def test_an_unreachable_store_holds_registrations_back_never_reception(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],  # noqa: F811
    worker: CeleryWorker,
    lonk: LonkCollector,
) -> None:
    """The store is down while a replica receives a whole series: every file is stored
    and acknowledged, the registration waits (nothing in the outbox), and is sent once,
    whole, when the store is back (empty)."""
    with redis_server(tmp_path / "redis") as store:
        env = replica_env(worker, lonk, store)
        one = await replica(tmp_path, "a", env)
        subject = lonk.subject(PACS, SAG_UID)
        try:
            store.stop()
            await storescu(one.port, [*halves[0], *halves[1]])  # asserts every status
            await asyncio.to_thread(one.wait_for_log, r"series due here wait for the series")
            assert outbox_entries(one.outbox_dir) == []
            assert len(list((tmp_path / "files").rglob("*.dcm"))) == WHOLE
            await asyncio.to_thread(store.start)
            await lonk.wait_until(lambda: "done" in lonk.decoded(subject), timeout=90)
        finally:
            await stop(one)
    assert await registered(worker) == [WHOLE]
    assert "series store" in one.log() and "reachable again" in one.log()
