"""Publishes the outbox's registrations to RabbitMQ (aio-pika), with publisher confirms.

One background task owns the connection. It connects (retrying with exponential backoff
while the broker is unreachable), looks at the outbox for entries left by earlier runs or
other processes, then publishes entries oldest first as they arrive: claim the file,
publish, wait for the broker's confirm, remove the file. A failed publish leaves the entry
in the outbox (its ``attempts`` counted) and the task reconnects; so does a connection that
closes while idle, at once (its close callback wakes the task), so that the loss is logged
when it happens. Reception never waits for any of this: :meth:`AmqpPublisher.submit` only
notes a file name.

The queue is declared the way Celery 5 (kombu) declares a task queue it creates: a durable
direct exchange named like the queue, the durable queue without arguments, bound with the
queue's name as routing key; messages go to that exchange with that routing key. A worker
that declared the queue first declares exactly the same, so neither is refused. If the
broker refuses our declaration (the queue exists with other arguments, e.g. a quorum queue),
the queue is used as it is, through the default exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import aio_pika
import aiormq.exceptions
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from oxidicom import telemetry
from oxidicom.notify.celery import task_message
from oxidicom.notify.outbox import Claim, Outbox
from oxidicom.support.urls import redact

log = logging.getLogger("oxidicom.amqp")

FIRST_RETRY_DELAY: Final = 0.5
MAX_RETRY_DELAY: Final = 30.0
CONNECT_TIMEOUT: Final = 10.0
CONFIRM_TIMEOUT: Final = 30.0

#: aiormq logs each connection failure itself: an ERROR for every failed attempt (one per
#: retry, all through an outage) and a WARNING with a traceback when the broker goes away.
#: The publisher reports both, once, with what waits in the outbox; these records of
#: aiormq's (matched by their format strings) are demoted to DEBUG.
_AIORMQ_CONNECTION_NOISE: Final = frozenset(
    {
        "error when creating transport: %r",
        "Cancelling cause reader exited abnormally",
        'Unexpected connection close from remote "%s", '
        "Connection.Close(reply_code=%r, reply_text=%r)",
    }
)


class ConnectionNoiseToDebug(logging.Filter):
    """Demote aiormq's own connection-failure records to DEBUG (see above)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in _AIORMQ_CONNECTION_NOISE:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_CONNECTION_NOISE_FILTER: Final = ConnectionNoiseToDebug()


class AmqpPublisher:
    """Moves registrations from the outbox to the broker."""

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
        #: Why the current connection closed under us (set by its close callback).
        self._lost: str | None = None
        self._connection: AbstractConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, name: str) -> None:
        """A new entry is in the outbox: publish it when possible."""
        self._pending[name] = None
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        logging.getLogger("aiormq.connection").addFilter(_CONNECTION_NOISE_FILTER)
        self._task = asyncio.create_task(self._run(), name="amqp-publisher")

    async def stop(self, timeout: float) -> None:
        """Publish what can be published within ``timeout`` s (only if connected), then close."""
        task = self._task
        if task is None:
            return
        if self._connected and self._pending and not task.done():
            log.info("publishing %d registration(s) before exit", len(self._pending))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # -- the task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = FIRST_RETRY_DELAY
        failures = 0
        while True:
            connection: AbstractConnection | None = None
            lost, reason = False, "closed"
            try:
                connection = await aio_pika.connect(self.url, timeout=CONNECT_TIMEOUT)
                await self._publish_while_connected(connection, failures)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                lost = self._connected
                reason = _describe(error)
            finally:
                self._connected = False
                self._connection = None  # its close callback, if late, is ignored
                self._channel = None
                self._exchanges.clear()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(connection.close())
            if lost:  # it worked until now: try again at once
                log.warning(
                    "AMQP connection lost (%s); %d registration(s) wait in the outbox",
                    reason,
                    len(self._pending),
                )
                delay, failures = FIRST_RETRY_DELAY, 0
                continue
            failures += 1
            log.log(
                logging.WARNING if failures == 1 else logging.DEBUG,
                "AMQP broker at %s unreachable (%s); registrations wait in the outbox %s;"
                " retrying in %.1f s",
                redact(self.url),
                reason,
                self.outbox.directory,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)

    async def _publish_while_connected(self, connection: AbstractConnection, failures: int) -> None:
        """Publish until something fails (it never returns normally)."""
        loop = asyncio.get_running_loop()
        self._connection, self._lost = connection, None
        connection.close_callbacks.add(self._connection_closed)
        self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        # Entries of earlier runs, and of sibling processes that died, join the queue.
        for name in await loop.run_in_executor(None, self.outbox.names):
            self._pending.setdefault(name, None)
        self._connected = True
        log.info(
            "AMQP connected to %s%s; %d registration(s) to publish",
            redact(self.url),
            f" after {failures} failed attempt(s)" if failures else "",
            len(self._pending),
        )
        while True:
            channel = self._channel
            # A connection that died while we were idle wakes us through its close callback
            # (or shows as a closed channel: aio-pika keeps the connection "open"): say so
            # now and reconnect without counting a failed attempt.
            if self._lost is not None:
                raise _ConnectionLost(self._lost)
            if connection.is_closed or channel is None or channel.is_closed:
                raise ConnectionError("the connection closed while idle")
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
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
            )
            try:
                await self._publish(connection, claim)
            except asyncio.CancelledError:
                attempt.failed("cancelled: the receiver is stopping")
                claim.close()
                raise
            except Exception as error:
                attempt.failed(_describe(error))
                await loop.run_in_executor(None, claim.failed, _describe(error))
                raise
            attempt.succeeded()
            await loop.run_in_executor(None, claim.done)
            self._pending.pop(name, None)
            self.published += 1

    def _connection_closed(self, connection: object, error: BaseException | None) -> None:
        if connection is not self._connection:
            return  # an earlier connection, closed by us
        self._lost = _describe(error) if error is not None else "closed by the broker"
        self._wake.set()

    async def _publish(self, connection: AbstractConnection, claim: Claim) -> None:
        registration = claim.registration
        queue = registration.queue
        exchange = self._exchanges.get(queue)
        if exchange is None:
            exchange = await self._declare(connection, queue)
        message = task_message(registration.task_id, registration.kwargs, self.origin)
        await exchange.publish(
            aio_pika.Message(
                message.body,
                headers=message.headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=message.delivery_mode,
                correlation_id=message.correlation_id,
                reply_to=message.reply_to,
            ),
            routing_key=queue,
            mandatory=True,
            timeout=CONFIRM_TIMEOUT,
        )
        kwargs = registration.kwargs
        log.info(
            "registration sent: task %s, %s file(s) of series %s from %s, queue %s",
            registration.task_id,
            kwargs.get("ndicom"),
            kwargs.get("SeriesInstanceUID"),
            kwargs.get("pacs_name"),
            queue,
        )

    async def _declare(self, connection: AbstractConnection, queue: str) -> AbstractExchange:
        channel = self._channel
        assert channel is not None
        try:
            exchange = await channel.declare_exchange(
                queue, aio_pika.ExchangeType.DIRECT, durable=True
            )
            declared = await channel.declare_queue(queue, durable=True)
            await declared.bind(exchange, routing_key=queue)
        except aiormq.exceptions.ChannelPreconditionFailed as error:
            # The broker closed the channel: open another, and use the queue as it is.
            log.warning(
                "queue %s exists with other settings than Celery's defaults (%s);"
                " publishing to it through the default exchange",
                queue,
                error,
            )
            channel = self._channel = await connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            self._exchanges.clear()
            await channel.declare_queue(queue, passive=True)
            exchange = channel.default_exchange
        self._exchanges[queue] = exchange
        return exchange


class _ConnectionLost(ConnectionError):
    """The broker connection closed under us; the text says why."""


def _describe(error: BaseException) -> str:
    text = str(error)
    if isinstance(error, _ConnectionLost):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
