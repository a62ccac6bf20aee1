"""Moves the outbox's registrations to CUBE's Celery broker: what every broker kind shares.

One background task owns the broker connection. It connects (retrying with exponential
backoff while the broker is unreachable or refuses us), looks at the outbox for entries left
by earlier runs or other processes, then publishes entries oldest first as they arrive:
claim the file, publish, wait for the broker's word that it has the message, remove the
file. A failed publish leaves the entry in the outbox (its ``attempts`` counted). Reception
never waits for any of this: :meth:`Publisher.submit` only notes a file name.

The broker kinds (:mod:`oxidicom.notify.amqp`, :mod:`oxidicom.notify.redis_publisher`)
say only how to connect and how to publish one registration (a :class:`BrokerSession`).

Faults are reported once per kind of fault, when it starts (a WARNING naming it: unreachable,
authentication refused, read-only replica, out of memory, ...), and once when it clears (an
INFO line: connected after N failed attempts, or accepting registrations again after N
refused ones); the metrics carry the connection state and a count of faults by kind. A
broker that refuses each publish (a *refusal*: it answers, with an error) keeps its
connection and is retried on it with the same backoff as one that cannot be reached: never
in a tight loop, and never a reconnection per attempt.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import ClassVar, Final, Protocol

from oxidicom import telemetry
from oxidicom.notify.outbox import Outbox, Registration
from oxidicom.notify.waiting import cancel_and_wait, wait_event
from oxidicom.support.urls import redact

log = logging.getLogger("oxidicom.broker")

FIRST_RETRY_DELAY: Final = 0.5
MAX_RETRY_DELAY: Final = 30.0


class BrokerSession(Protocol):
    """One connection to the broker, as the publishing task uses it."""

    async def publish(self, registration: Registration) -> None:
        """Publish one registration; return once the broker has it (raise if not)."""

    async def check(self) -> None:
        """Raise if the connection is gone (called while idle, every ``idle_check`` s)."""

    async def close(self) -> None:
        """Close the connection (errors are the caller's to ignore)."""


class BrokerFault(Exception):
    """A broker error with its kind (:attr:`kind`, a metric attribute) and a clear text.

    A *refusal* is the broker's answer on a working connection (out of memory, read-only,
    not permitted, a negative confirm): the connection is kept and the publish is retried
    on it with backoff. Anything else ends the connection.
    """

    def __init__(self, kind: str, text: str, *, refusal: bool = False) -> None:
        super().__init__(text)
        self.kind = kind
        self.refusal = refusal


class ConnectionLost(ConnectionError):
    """The broker connection closed under us; the text says why."""


class Publisher(abc.ABC):
    """Publishes outbox entries to one broker (subclasses: one per broker kind)."""

    #: How logs and metrics name the broker kind.
    kind: ClassVar[str]
    #: ``messaging.system`` of the publish spans.
    messaging_system: ClassVar[str]
    #: Seconds between checks of an idle connection; None: the kind notices by itself.
    idle_check: ClassVar[float | None] = None

    def __init__(self, url: str, outbox: Outbox, *, origin: str) -> None:
        self.url = url
        self.outbox = outbox
        self.origin = origin
        self.published = 0
        #: Entry names to publish, oldest first (a dict is an ordered set).
        self._pending: dict[str, None] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._connected = False
        #: Why the current connection closed under us (set by :meth:`_lost`).
        self._lost_reason: str | None = None
        self._task: asyncio.Task[None] | None = None
        #: Set by :meth:`stop` before it cancels the task, which may not see the
        #: cancellation: a library's wait can lose it (oxidicom.notify.waiting).
        self._stopping = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def connected(self) -> bool:
        return self._connected

    def submit(self, name: str) -> None:
        """A new entry is in the outbox: publish it when possible."""
        self._pending[name] = None
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.kind.lower()}-publisher")

    async def stop(self, timeout: float) -> None:
        """Publish what can be published within ``timeout`` s (only if connected), then close."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        if self._connected and self._pending and not task.done():
            log.info("publishing %d registration(s) before exit", len(self._pending))
            await wait_event(self._idle, timeout)
        await cancel_and_wait([task])
        telemetry.broker_connected(self.kind, False)

    # -- what a broker kind provides ------------------------------------------------------

    @abc.abstractmethod
    async def _connect(self, lost: Callable[[str], None]) -> BrokerSession:
        """Connect and return a session; call ``lost(reason)`` if it closes by itself."""

    def _classify(self, error: BaseException) -> BrokerFault:
        """The kind and text of a failure (a kind may recognise its own errors)."""
        if isinstance(error, BrokerFault):
            return error
        if isinstance(error, ConnectionLost):
            return BrokerFault("connection_lost", str(error))
        if isinstance(error, TimeoutError):
            return BrokerFault("timeout", f"no answer in time ({describe(error)})")
        if isinstance(error, OSError):
            return BrokerFault("unreachable", f"unreachable ({describe(error)})")
        return BrokerFault("error", describe(error))

    # -- the task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = FIRST_RETRY_DELAY
        failures = 0
        reported: str | None = None  # the fault kind last logged as a WARNING
        while True:
            session: BrokerSession | None = None
            published_before = self.published
            lost_while_connected = False
            fault: BrokerFault | None = None
            try:
                session = await self._connect(self._lost)
                if self._stopping:
                    # Cancelled while connecting, and the connection came up anyway: the
                    # cancellation was lost on the way (aiormq's timeout on CPython 3.11).
                    raise asyncio.CancelledError
                await self._publish_while_connected(session, failures)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Lost after it worked: a connection that published or stayed up idle.
                lost_while_connected = self._connected and (
                    self.published > published_before or isinstance(error, ConnectionLost)
                )
                fault = self._classify(error)
            finally:
                self._connected = False
                telemetry.broker_connected(self.kind, False)
                if session is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(session.close())
            assert fault is not None  # _publish_while_connected never returns normally
            telemetry.broker_fault(self.kind, fault.kind)
            if lost_while_connected:  # it worked until now: try again at once
                log.warning(
                    "%s connection lost: %s; %d registration(s) wait in the outbox",
                    self.kind,
                    fault,
                    len(self._pending),
                )
                # The reconnects that fail the same way are this outage: DEBUG lines.
                delay, failures, reported = FIRST_RETRY_DELAY, 0, fault.kind
                continue
            failures += 1
            self._log_fault(fault, failures, fault.kind != reported, delay)
            reported = fault.kind
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)

    async def _publish_while_connected(self, session: BrokerSession, failures: int) -> None:
        """Publish until something fails (it never returns normally)."""
        loop = asyncio.get_running_loop()
        self._lost_reason = None
        # Entries of earlier runs, and of sibling processes that died or lost their own
        # connection, join the queue: work to finish before exit, as a submitted one is.
        for name in await loop.run_in_executor(None, self.outbox.names):
            self._pending.setdefault(name, None)
        if self._pending:
            self._idle.clear()
        self._connected = True
        telemetry.broker_connected(self.kind, True)
        log.info(
            "%s connected to %s%s; %d registration(s) to publish",
            self.kind,
            redact(self.url),
            f" after {failures} failed attempt(s)" if failures else "",
            len(self._pending),
        )
        refused = 0  # publishes refused in a row on this connection
        reported: str | None = None  # the refusal kind last logged as a WARNING
        while True:
            if self._lost_reason is not None:
                raise ConnectionLost(self._lost_reason)
            if not self._pending:
                await self._wait_idle(session)
                continue
            name = next(iter(self._pending))
            claim = await loop.run_in_executor(None, self.outbox.claim, name)
            if claim is None:  # published by someone else, or set aside as invalid
                self._pending.pop(name, None)
                continue
            registration = claim.registration
            attempt = telemetry.registration_publish(
                queue=registration.queue,
                series_instance_uid=str(registration.kwargs.get("SeriesInstanceUID")),
                pacs_name=str(registration.kwargs.get("pacs_name")),
                traceparent=registration.traceparent,
                association_id=registration.association_id,
                ndicom=registration.kwargs.get("ndicom"),
                system=self.messaging_system,
            )
            try:
                await session.publish(registration)
            except asyncio.CancelledError:
                attempt.failed("cancelled: the receiver is stopping")
                claim.close()
                raise
            except Exception as error:
                fault = self._classify(error)
                attempt.failed(str(fault))
                await loop.run_in_executor(None, claim.failed, str(fault))
                if not fault.refusal:
                    raise
                refused += 1
                telemetry.broker_fault(self.kind, fault.kind)
                delay = min(FIRST_RETRY_DELAY * 2 ** (refused - 1), MAX_RETRY_DELAY)
                self._log_fault(fault, refused, fault.kind != reported, delay)
                reported = fault.kind
                await asyncio.sleep(delay)
                continue
            attempt.succeeded()
            await loop.run_in_executor(None, claim.done)
            self._pending.pop(name, None)
            self.published += 1
            if refused:
                log.info(
                    "%s broker at %s accepts registrations again after %d refused attempt(s)",
                    self.kind,
                    redact(self.url),
                    refused,
                )
                refused, reported = 0, None
            kwargs = registration.kwargs
            log.info(
                "registration sent: task %s, %s file(s) of series %s from %s, queue %s",
                registration.task_id,
                kwargs.get("ndicom"),
                kwargs.get("SeriesInstanceUID"),
                kwargs.get("pacs_name"),
                registration.queue,
            )

    def _log_fault(self, fault: BrokerFault, attempt: int, new_kind: bool, delay: float) -> None:
        """A WARNING when a kind of fault starts; DEBUG for the attempts that repeat it."""
        log.log(
            logging.WARNING if new_kind else logging.DEBUG,
            "%s broker at %s: %s; registrations wait in the outbox %s; retrying in %.1f s%s",
            self.kind,
            redact(self.url),
            fault,
            self.outbox.directory,
            delay,
            "" if new_kind else f" (attempt {attempt})",
        )

    async def _wait_idle(self, session: BrokerSession) -> None:
        """Wait for work; check the connection every ``idle_check`` s meanwhile."""
        self._idle.set()
        self._wake.clear()
        if self.idle_check is None:
            await self._wake.wait()
            return
        if not await wait_event(self._wake, self.idle_check):
            try:
                await session.check()
            except Exception as error:
                raise ConnectionLost(str(self._classify(error))) from error

    def _lost(self, reason: str) -> None:
        """The connection closed by itself: wake the task, which reconnects."""
        self._lost_reason = reason
        self._wake.set()


def describe(error: BaseException) -> str:
    """``Type: text`` of an error, for logs and the outbox entry's ``last_error``."""
    text = str(error)
    if isinstance(error, BrokerFault | ConnectionLost):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
