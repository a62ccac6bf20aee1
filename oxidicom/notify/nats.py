"""Publishes LONK messages to NATS (nats-py), never slowing reception down.

Messages wait in one FIFO (so each subject's messages leave in the order they were made)
that a background task empties into the NATS connection. The FIFO is bounded: beyond
:data:`OPTIONAL_LIMIT` queued messages optional progress is refused, beyond
:data:`REQUIRED_LIMIT` everything is; refused and failed messages are counted in
:attr:`LonkPublisher.dropped`. While NATS is unreachable at start the task keeps trying to
connect; once connected, nats-py reconnects by itself and buffers meanwhile. Bulk senders wait
for room (:meth:`LonkPublisher.room`) rather than be dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Final

import nats
from nats.aio.client import Client

from oxidicom import telemetry
from oxidicom.notify import lonk
from oxidicom.notify.waiting import cancel_and_wait, wait_event

log = logging.getLogger("oxidicom.nats")

#: Queued messages above which optional progress is dropped.
OPTIONAL_LIMIT: Final = 1024
#: Queued messages above which every message is dropped (about 100 bytes each).
REQUIRED_LIMIT: Final = 65536
_RECONNECT_WAIT: Final = 2.0


class LonkPublisher:
    """A bounded outgoing queue of (subject, payload) and the task that sends it."""

    def __init__(
        self,
        address: str,
        *,
        dev_sleep: float | None = None,
        optional_limit: int = OPTIONAL_LIMIT,
        required_limit: int = REQUIRED_LIMIT,
    ) -> None:
        self.address = address
        self.dev_sleep = dev_sleep
        self.optional_limit = optional_limit
        self.required_limit = required_limit
        self.sent = 0
        self.dropped = 0
        self._queue: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        #: Set whenever the queue is below :attr:`room_level` (see :meth:`room`).
        self._roomy = asyncio.Event()
        self._roomy.set()
        self.room_level = max(1, optional_limit // 2)
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._connect_failures = 0
        self._closing = False

    # -- the hot side: called from storage outcomes, never waits --------------------------

    def room_for_optional(self) -> bool:
        return len(self._queue) < self.optional_limit

    def offer(self, subject: str, payload: bytes, required: bool) -> bool:
        """Queue a message; False (and counted) when the queue is full for its kind."""
        queued = len(self._queue)
        if queued >= (self.required_limit if required else self.optional_limit):
            if required and not self.dropped:
                log.warning("NATS is not keeping up: dropping LONK messages (%d queued)", queued)
            self.dropped += 1
            telemetry.lonk_dropped("unavailable")
            return False
        self._queue.append((subject, payload))
        if not self._wake.is_set():
            self._idle.clear()
            self._wake.set()
        return True

    async def room(self) -> None:
        """Wait until the queue is below :attr:`room_level` (half the optional limit).

        For bulk senders (the end of an association with thousands of series): they wait
        for the queue to drain instead of overflowing it, and other associations' optional
        progress still finds room. Returns at once while nothing empties the queue (NATS
        not connected yet, or stopped): :meth:`offer` then counts what it drops, as always.
        """
        while len(self._queue) >= self.room_level and self._draining():
            self._roomy.clear()
            await self._roomy.wait()

    def _draining(self) -> bool:
        task = self._task
        return self._client is not None and task is not None and not task.done()

    # -- the sending side ------------------------------------------------------------------

    def start(self) -> None:
        if self.dev_sleep:
            log.warning(
                "OXIDICOM_DEV_SLEEP=%ss: every NATS message is followed by a pause;"
                " for UI development only, never in production",
                self.dev_sleep,
            )
        self._task = asyncio.create_task(self._run(), name="lonk-publisher")
        self._task.add_done_callback(lambda _: self._roomy.set())

    async def _run(self) -> None:
        try:
            client = await self._connect()
        except Exception as error:  # not a connection failure (those are retried): a bad URL
            log.error(
                "cannot use OXIDICOM_NATS_ADDRESS=%r (%s): no progress messages will be sent",
                self.address,
                error,
            )
            return
        self._client = client
        log.info("NATS connected to %s", _server_of(client) or self.address)
        queue = self._queue
        while True:
            if not queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            subject, payload = queue.popleft()
            if len(queue) < self.room_level and not self._roomy.is_set():
                self._roomy.set()
            try:
                await client.publish(subject, payload)
            except Exception as error:  # buffer full while reconnecting, closed, bad subject
                self.dropped += 1
                telemetry.lonk_dropped("unavailable")
                log.debug("LONK message on %s dropped: %r", subject, error)
            else:
                self.sent += 1
                telemetry.lonk_sent(lonk.kind_of(payload))
            if self.dev_sleep:
                await asyncio.sleep(self.dev_sleep)

    async def _connect(self) -> Client:
        # max_reconnect_attempts=-1: nats-py retries the first connection too, forever,
        # calling _on_error after each failure.
        return await nats.connect(
            self.address,
            name="oxidicom",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=_RECONNECT_WAIT,
            connect_timeout=5,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )

    async def stop(self, timeout: float) -> None:
        """Send what is queued (at most ``timeout`` s), flush NATS, close."""
        task = self._task
        if task is None:
            return
        client = self._client
        if client is not None and client.is_connected and not task.done():
            await wait_event(self._idle, timeout)
        await cancel_and_wait([task])
        self._roomy.set()  # nothing drains the queue any more: waiters go on
        self._closing = True
        if client is not None and client.is_connected:
            try:
                await client.flush(timeout=max(1, int(timeout)))
            except Exception as error:
                log.warning("NATS flush failed: %r", error)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
        unsent = len(self._queue)
        level = logging.WARNING if unsent or self.dropped else logging.INFO
        log.log(
            level,
            "LONK: %d message(s) sent, %d dropped, %d not sent at shutdown",
            self.sent,
            self.dropped,
            unsent,
        )

    # -- nats-py callbacks -------------------------------------------------------------------

    async def _on_error(self, error: Exception) -> None:
        self._connect_failures += 1
        if self._client is None and self._connect_failures == 1:
            log.warning(
                "NATS at %s unreachable (%r); progress messages wait (up to %d) while"
                " retrying every %.0f s",
                self.address,
                error,
                self.required_limit,
                _RECONNECT_WAIT,
            )
        else:
            log.debug("NATS error: %r", error)

    async def _on_disconnected(self) -> None:
        if self._client is not None and not self._closing:
            log.warning("NATS disconnected; reconnecting")

    async def _on_reconnected(self) -> None:
        log.info("NATS reconnected to %s", _server_of(self._client) or self.address)


def _server_of(client: Client | None) -> str | None:
    server = client.connected_url if client is not None else None
    return f"{server.hostname}:{server.port}" if server is not None else None
