"""Background loops stop when cancelled, whatever wakes them at that moment (issue 22).

On CPython 3.11, ``asyncio.wait_for(event.wait(), timeout)`` swallows a cancellation
that arrives once the event is set but before the waiting task resumes: the loop runs
on, and a stop that awaits it waits for ever (a receiver with the series store hung at
its stop after the store restarted: each failed call wakes the sync task). The
interleaving is forced: the event is set, the loop turns ``turns`` times, then the task
is cancelled; with ``wait_for`` three of these turns lose the cancellation on 3.11.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from oxidicom.notify.series_redis import RedisSeriesStore
from oxidicom.notify.waiting import cancel_and_wait, wait_event
from tests.integration.redis_server import RedisServer

TURNS = range(6)


async def turn(times: int) -> None:
    for _ in range(times):
        await asyncio.sleep(0)  # one turn of the loop: no time passes


async def test_wait_event_keeps_a_cancellation_that_comes_as_the_event_is_set() -> None:
    async def loop(event: asyncio.Event) -> None:
        while True:
            await wait_event(event, 0.25)
            event.clear()

    for turns in TURNS:
        event = asyncio.Event()
        task = asyncio.create_task(loop(event))
        await turn(2)  # the task waits for the event
        event.set()
        await turn(turns)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        assert done == {task}, f"the cancellation was lost after {turns} turn(s)"
        assert task.cancelled()


async def test_cancel_and_wait_raises_the_callers_own_cancellation() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()  # takes its time to end
            raise

    inner = asyncio.create_task(stubborn())
    await turn(1)
    outer = asyncio.create_task(cancel_and_wait([inner]))
    await turn(2)
    outer.cancel()  # the caller of cancel_and_wait is cancelled meanwhile
    with pytest.raises(asyncio.CancelledError):
        await outer
    release.set()
    await asyncio.wait([inner])
    assert inner.cancelled()


async def test_the_series_store_stops_when_its_sync_task_was_just_woken(
    server: RedisServer,
) -> None:
    registrations: Any = SimpleNamespace(journal=SimpleNamespace(adopted=[]))

    async def later(series: Any, outcome: Any) -> None:
        return None

    for turns in TURNS:
        store = RedisSeriesStore(server.url, registrations, settle=1.0, lease=30.0)
        await store.start(later, None)
        await turn(3)  # its tasks wait: the sync task for its wake event
        store._wake_sync.set()  # as a failed call, or the hot path, does
        await turn(turns)
        stopping = asyncio.create_task(store.stop())
        # A generous bound, so that the test fails rather than hangs: a stop of a store
        # that answers takes a few round trips.
        done, _ = await asyncio.wait([stopping], timeout=5)
        running = [task.get_name() for task in store._tasks if not task.done()]
        await cancel_and_wait([stopping, *store._tasks])
        assert done == {stopping}, f"the stop hangs ({turns} turn(s)); running: {running}"
        assert running == []


async def test_cancel_and_wait_cancels_again_a_task_that_lost_its_cancellation() -> None:
    lost = asyncio.Event()

    async def loses_it() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            lost.set()  # as a library's asyncio.wait_for on 3.11 may, then goes on
        await asyncio.Event().wait()

    task = asyncio.create_task(loses_it())
    await turn(1)
    stopping = asyncio.create_task(cancel_and_wait([task]))
    # A bound so that the test fails rather than hangs (it waited for ever before).
    done, _ = await asyncio.wait([stopping], timeout=30)
    assert lost.is_set()
    assert done == {stopping}
    assert task.cancelled()
