"""Publishes registrations to RabbitMQ (aio-pika), with publisher confirms.

The queue is declared the way Celery 5 (kombu) declares a task queue it creates: a durable
direct exchange named like the queue, the durable queue without arguments, bound with the
queue's name as routing key; messages go to that exchange with that routing key. A worker
that declared the queue first declares exactly the same, so neither is refused. If the
broker refuses our declaration (the queue exists with other arguments, e.g. a quorum queue),
the queue is used as it is, through the default exchange.

A connection that closes while idle wakes the publishing task at once (its close callback),
so that the loss is logged when it happens. The rest (outbox, retries, logs) is
:mod:`oxidicom.notify.publisher`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar, Final

import aio_pika
import aiormq.exceptions
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from oxidicom.notify.celery import task_message
from oxidicom.notify.outbox import Registration
from oxidicom.notify.publisher import BrokerFault, ConnectionLost, Publisher, describe

log = logging.getLogger("oxidicom.amqp")

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


class AmqpPublisher(Publisher):
    """Moves registrations from the outbox to RabbitMQ."""

    kind: ClassVar[str] = "AMQP"
    messaging_system: ClassVar[str] = "rabbitmq"
    #: The close callback reports a lost connection; this catches a channel that died alone.
    idle_check: ClassVar[float | None] = 5.0

    def start(self) -> None:
        logging.getLogger("aiormq.connection").addFilter(_CONNECTION_NOISE_FILTER)
        super().start()

    async def _connect(self, lost: Callable[[str], None]) -> _AmqpSession:
        connection = await aio_pika.connect(self.url, timeout=CONNECT_TIMEOUT)
        session = _AmqpSession(connection, self.origin, lost)
        try:
            await session.open_channel()
        except BaseException:
            await session.close()
            raise
        return session

    def _classify(self, error: BaseException) -> BrokerFault:
        if isinstance(error, aiormq.exceptions.ProbableAuthenticationError):
            return BrokerFault(
                "authentication", f"the broker refused our credentials ({describe(error)})"
            )
        if isinstance(error, aiormq.exceptions.DeliveryError):
            return BrokerFault("refused", f"the broker refused the message ({describe(error)})")
        return super()._classify(error)


class _AmqpSession:
    """One AMQP connection and its confirming channel."""

    def __init__(
        self, connection: AbstractConnection, origin: str, lost: Callable[[str], None]
    ) -> None:
        self.connection = connection
        self.origin = origin
        self._lost = lost
        self._closing = False
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        connection.close_callbacks.add(self._connection_closed)

    async def open_channel(self) -> None:
        self._channel = await self.connection.channel(
            publisher_confirms=True, on_return_raises=True
        )

    def _connection_closed(self, connection: object, error: BaseException | None) -> None:
        if not self._closing:  # closed by the broker, not by us
            self._lost(describe(error) if error is not None else "closed by the broker")

    async def check(self) -> None:
        # aio-pika keeps a connection "open" whose channel died: that shows here.
        channel = self._channel
        if self.connection.is_closed or channel is None or channel.is_closed:
            raise ConnectionLost("the connection closed while idle")

    async def close(self) -> None:
        self._closing = True
        await self.connection.close()

    async def publish(self, registration: Registration) -> None:
        await self.check()
        queue = registration.queue
        exchange = self._exchanges.get(queue)
        if exchange is None:
            exchange = await self._declare(queue)
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

    async def _declare(self, queue: str) -> AbstractExchange:
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
            await self.open_channel()
            channel = self._channel
            assert channel is not None
            self._exchanges.clear()
            await channel.declare_queue(queue, passive=True)
            exchange = channel.default_exchange
        self._exchanges[queue] = exchange
        return exchange
