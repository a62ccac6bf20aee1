"""Shutdown waits for background work, and returns when that work has just finished.

Since Python 3.12, ``asyncio.gather`` over futures that are already done completes at
once, without yielding to the loop: a ``while pending: await gather(*pending)`` whose set
is emptied by done callbacks then spins for ever (seen: a worker at 60 % CPU in
``Registrations.stop``, never exiting). A future that is done, with its callback to leave
the set scheduled but not yet run, is that moment.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from oxidicom.notify.outbox import Outbox
from oxidicom.notify.registrations import Registrations
from oxidicom.storage.writer import Store

pytestmark = pytest.mark.timeout(20)  # a spinning loop never lets wait_for time out


def _finished() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


async def test_registrations_stop_returns_when_a_write_has_just_finished(tmp_path: Path) -> None:
    registrations = Registrations(Outbox(tmp_path / "outbox"), "q", None)
    await registrations.start()
    write = _finished()
    registrations._writes.add(write)  # its callback to leave is scheduled, not run yet
    await registrations.stop(1.0)
    assert not registrations._writes


async def test_store_drain_returns_when_a_cleanup_has_just_finished(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.prepare()
    store.track(_finished())  # its discard callback is scheduled, not run yet
    await store.drain()
    store.close()
    assert not store._cleanups
