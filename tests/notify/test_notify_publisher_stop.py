"""A stopping publisher finishes what it took from the outbox listing (not only what was
submitted): the publish in flight at SIGTERM completes, and its entry leaves the outbox.

The broker is a fake here (the logic of the publishing task alone); the real brokers
are in tests/integration/test_notifications.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

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
