"""A stopping publisher finishes what it took from the outbox listing (not only what was
submitted): the publish in flight at SIGTERM completes, and its entry leaves the outbox.

The broker is a fake here (the logic of the publishing task alone); the real brokers
are in tests/integration/test_notifications.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from oxidicom.notify.outbox import Outbox, Registration
from oxidicom.notify.publisher import Publisher


class HeldSession:
    """Publishes once ``release`` is set: a broker's confirm still on its way."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.published: list[Registration] = []

    async def publish(self, registration: Registration) -> None:
        self.started.set()
        await self.release.wait()
        self.published.append(registration)

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        return None


class OneSessionPublisher(Publisher):
    kind = "FAKE"
    messaging_system = "fake"

    def __init__(self, outbox: Outbox, session: HeldSession) -> None:
        super().__init__("fake://", outbox, origin="test")
        self.session = session

    async def _connect(self, lost: Callable[[str], None]) -> HeldSession:
        return self.session


async def test_an_entry_found_in_the_outbox_is_published_before_exit(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.prepare()
    # Written by another process (a sibling worker, an earlier run): never submitted here.
    outbox.add(Registration.new("task", "q", {"SeriesInstanceUID": "1.2.3"}))
    session = HeldSession()
    publisher = OneSessionPublisher(outbox, session)
    publisher._idle.set()  # it was idle on an earlier connection
    publisher.start()
    await asyncio.wait_for(session.started.wait(), 10)  # in flight: SIGTERM now
    stopping = asyncio.create_task(publisher.stop(timeout=10))
    await asyncio.sleep(0)
    assert not stopping.done()  # it waits for the publish in flight
    session.release.set()  # the broker's confirm arrives
    await asyncio.wait_for(stopping, 10)
    assert len(session.published) == 1
    assert outbox.names() == []  # published once: not again at the next start


class LosesItsCancellation(OneSessionPublisher):
    """Connects as aio-pika does on CPython 3.11 when the connection completes just as
    the task is cancelled: aiormq's ``asyncio.wait_for`` returns the connection and the
    cancellation is lost."""

    def __init__(self, outbox: Outbox, session: HeldSession) -> None:
        super().__init__(outbox, session)
        self.connecting = asyncio.Event()
        self.closed = asyncio.Event()
        session.close = self._close  # type: ignore[method-assign]

    async def _close(self) -> None:
        self.closed.set()

    async def _connect(self, lost: Callable[[str], None]) -> HeldSession:
        self.connecting.set()
        # What wait_for does when its inner await has just finished: no CancelledError.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()  # the handshake, until the stop cancels it
        return self.session


async def test_a_publisher_cancelled_as_its_connection_comes_up_stops_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(tmp_path / "outbox")
    outbox.prepare()
    # An entry that the connection, had it gone on, would have taken and published.
    outbox.add(Registration.new("task", "q", {"SeriesInstanceUID": "1.2.3"}))
    session = HeldSession()
    publisher = LosesItsCancellation(outbox, session)
    caplog.set_level(logging.INFO, logger="oxidicom")
    publisher.start()
    await publisher.connecting.wait()
    stopping = asyncio.create_task(publisher.stop(timeout=10))
    # A bound so that the test fails rather than hangs (the stop hung for ever before).
    done, _ = await asyncio.wait([stopping], timeout=30)
    assert done == {stopping}
    assert publisher.closed.is_set()  # the connection that came up is closed
    assert not session.started.is_set()  # nothing published after the stop began
    assert len(outbox.names()) == 1  # the entry waits for the next start
    assert "connected to" not in caplog.text
