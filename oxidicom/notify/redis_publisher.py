"""Publishes registrations to a Redis-protocol broker (Redis, DragonflyDB), as kombu does.

CUBE's Celery workers read their queues from Redis through kombu's Redis transport: a queue
is a list named like the queue, a producer ``LPUSH``-es the message (one JSON document,
:func:`~oxidicom.notify.celery.kombu_redis_message`) and a worker ``BRPOP``-s it. Publishing
a registration is therefore one ``LPUSH``; its reply, the list's new length, is the server's
word that it holds the message, and only then does the entry leave the outbox. A reply lost
with the connection makes the entry be pushed again: at most a duplicate, which CUBE
refuses.

What "holds" means is the server's configuration: a Redis or DragonflyDB without
persistence loses its lists when it restarts (docs/telling-cube.md says so).

Commands sent: ``AUTH`` and ``SELECT`` at connect when the URL asks for them, ``PING`` at
connect and every :attr:`RedisPublisher.idle_check` s while idle, ``LPUSH`` per
registration. The rest (outbox, retries, logs) is :mod:`oxidicom.notify.publisher`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import redis.exceptions

from oxidicom.notify.broker_url import redis_client
from oxidicom.notify.celery import kombu_redis_message, task_message
from oxidicom.notify.outbox import Registration
from oxidicom.notify.publisher import BrokerFault, Publisher, describe

if TYPE_CHECKING:
    import redis.asyncio


class RedisPublisher(Publisher):
    """Moves registrations from the outbox to a Redis-protocol broker."""

    kind: ClassVar[str] = "Redis"
    messaging_system: ClassVar[str] = "redis"
    #: A PING this often while idle: a server that went away is reported when it does.
    idle_check: ClassVar[float | None] = 10.0

    async def _connect(self, lost: Callable[[str], None]) -> _RedisSession:
        client = redis_client(self.url)
        try:
            await client.ping()  # connects, authenticates and selects the database
        except BaseException:
            await client.aclose()
            raise
        return _RedisSession(client, self.origin)

    def _classify(self, error: BaseException) -> BrokerFault:
        return classify_redis_error(error) or super()._classify(error)


def classify_redis_error(error: BaseException) -> BrokerFault | None:
    """The fault kind and a clear text for a redis-py error; None if it is not one."""
    text = describe(error)
    if isinstance(
        error,
        redis.exceptions.AuthenticationError
        | redis.exceptions.AuthenticationWrongNumberOfArgsError,
    ):
        return BrokerFault("authentication", f"the server refused our credentials ({text})")
    if isinstance(error, redis.exceptions.NoPermissionError):
        return BrokerFault(
            "permission", f"the server's ACL refuses the command ({text})", refusal=True
        )
    if isinstance(error, redis.exceptions.ReadOnlyError):
        return BrokerFault(
            "read_only",
            f"the server is a read-only replica, not the primary ({text})",
            refusal=True,
        )
    if isinstance(error, redis.exceptions.OutOfMemoryError):
        return BrokerFault(
            "out_of_memory",
            f"the server refuses writes: maxmemory reached with a noeviction policy ({text})",
            refusal=True,
        )
    if isinstance(error, redis.exceptions.BusyLoadingError):
        return BrokerFault("loading", f"the server is loading its data set ({text})", refusal=True)
    if "DB index is out of range" in str(error) or "invalid database" in str(error).lower():
        return BrokerFault("no_such_database", f"the server has no such database number ({text})")
    if isinstance(error, redis.exceptions.TimeoutError):
        return BrokerFault("timeout", f"no answer in time ({text})")
    if isinstance(error, redis.exceptions.ConnectionError):
        return BrokerFault("unreachable", f"unreachable ({text})")
    if isinstance(error, redis.exceptions.RedisError):
        return BrokerFault("refused", f"the server refused the command ({text})", refusal=True)
    return None


class _RedisSession:
    """One redis-py client (a pool of one connection, as the publisher uses it)."""

    def __init__(self, client: redis.asyncio.Redis, origin: str) -> None:
        self.client = client
        self.origin = origin

    async def publish(self, registration: Registration) -> None:
        message = task_message(registration.task_id, registration.kwargs, self.origin)
        queue = registration.queue
        await self.client.lpush(queue, kombu_redis_message(message, queue, str(uuid.uuid4())))

    async def check(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
