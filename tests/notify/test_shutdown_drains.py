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

from oxidicom.notify.journal import SeriesJournal
from oxidicom.notify.notifier import ChrisNotifier
from oxidicom.notify.outbox import Outbox
from oxidicom.notify.registrations import Registrations
from oxidicom.storage.writer import Store

pytestmark = pytest.mark.timeout(20)  # a spinning loop never lets wait_for time out


def _finished() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


async def test_notifier_stop_returns_when_an_end_has_just_finished(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    journal = SeriesJournal(outbox, tmp_path / "files")
    notifier = ChrisNotifier(Registrations(Outbox(outbox), "q", None, journal), None, None)
    await notifier.start()
    notifier._ends.add(_finished())  # its callback to leave is scheduled, not run yet
    await notifier.stop()
    assert not notifier._ends


async def test_store_drain_returns_when_a_cleanup_has_just_finished(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.prepare()
    store.track(_finished())  # its discard callback is scheduled, not run yet
    await store.drain()
    store.close()
    assert not store._cleanups
