"""The Celery broker URL (``OXIDICOM_CELERY_BROKER``): which broker kind, checked at start.

CUBE's Celery reads ``CELERY_BROKER_URL``; the receiver must talk to the same broker with the
same URL. Two kinds are spoken:

- ``amqp://`` and ``amqps://`` (TLS): RabbitMQ, through aio-pika;
- ``redis://`` and ``rediss://`` (TLS): Redis or a Redis-protocol server such as DragonflyDB
  (CUBE's broker since 2026), through redis-py, with the password and database number
  written as Celery itself reads them: ``redis://:password@host:port/db`` or
  ``redis://user:password@host:port/db``.

Anything else is refused here, at start, with one line naming what is wrong: a receiver that
retried forever against the wrong protocol would register nothing and say nothing useful.
Pure: no I/O, no client library imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    import redis.asyncio

BrokerKind = Literal["amqp", "redis"]

SCHEMES: Final[dict[str, BrokerKind]] = {
    "amqp": "amqp",
    "amqps": "amqp",
    "redis": "redis",
    "rediss": "redis",
}
#: Redis servers are built with 16 databases by default; a server may be configured with
#: more, so only the form is checked here, and the server says whether the number exists.
_MAX_REDIS_DB: Final = 2**31 - 1

#: Bounds of one Redis round trip: an unanswered connect or command is a fault to report,
#: not a wait forever. Generous next to a healthy server's sub-millisecond answers.
REDIS_CONNECT_TIMEOUT: Final = 10.0
REDIS_COMMAND_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """A checked broker URL: its kind, the URL as written, and (Redis) the database."""

    kind: BrokerKind
    url: str
    scheme: str
    host: str
    port: int
    #: The Redis database number (0 when the URL names none); 0 for AMQP.
    database: int = 0

    @property
    def name(self) -> str:
        """How logs name the broker kind: ``AMQP`` or ``Redis``."""
        return "AMQP" if self.kind == "amqp" else "Redis"


def parse_broker_url(url: str) -> BrokerUrl:
    """Check ``url`` and say which broker it names; ``ValueError`` with the reason if not."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:  # a port that is not a number, a bracket left open, ...
        raise ValueError(f"not a URL ({error})") from None
    # "host:port" (how NATS addresses are written) parses as scheme "host": say what it is.
    scheme = parts.scheme.lower() if "://" in text else ""
    kind = SCHEMES.get(scheme)
    if kind is None:
        problem = (
            f"'{scheme}://' is not a broker this receiver speaks"
            if scheme
            else f"no scheme (write it as redis://{text} or amqp://{text})"
        )
        raise ValueError(
            f"{problem}; expected amqp://, amqps:// (RabbitMQ) or redis://, rediss://"
            " (Redis, DragonflyDB)"
        )
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"no host in the URL; expected {scheme}://host[:port]/...")
    if kind == "amqp":
        return BrokerUrl("amqp", text, scheme, host, port or (5671 if scheme == "amqps" else 5672))
    database = _redis_database(parts.path, dict(parse_qsl(parts.query)))
    return BrokerUrl("redis", text, scheme, host, port or 6379, database)


def _redis_database(path: str, query: dict[str, str]) -> int:
    """The database number of a Redis URL, as redis-py and Celery read it (path, else
    ``?db=``); 0 when neither names one."""
    number = path.strip("/") or query.get("db", "")
    if not number:
        return 0
    if not number.isdigit() or int(number) > _MAX_REDIS_DB:
        raise ValueError(f"the database {number!r} is not a number; expected redis://host:port/N")
    return int(number)


def redis_client(url: str) -> redis.asyncio.Redis:
    """A redis-py asyncio client for ``url`` (a checked ``redis://``/``rediss://`` URL).

    Every command is bounded in time, nothing is retried inside the client (the caller
    owns retries, so that each failure is seen and reported), the protocol is RESP2 and
    no ``HELLO`` or ``CLIENT SETINFO`` is sent at connect: the commands sent are exactly
    those the caller issues, plus ``AUTH`` and ``SELECT`` as the URL asks (the list a
    Redis-protocol server must support, in docs/telling-cube.md).
    """
    import inspect

    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # redis-py 7.1 and later take driver_info (None: no CLIENT SETINFO); older ones take
    # lib_name and lib_version (None: none), which the newer ones still accept, with a
    # deprecation warning.
    parameters = inspect.signature(redis.asyncio.Redis.__init__).parameters
    no_setinfo: dict[str, None] = (
        {"driver_info": None}
        if "driver_info" in parameters
        else {"lib_name": None, "lib_version": None}
    )
    return redis.asyncio.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_COMMAND_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        # RESP2 on every redis-py version (8 would say HELLO 3 first): the oldest,
        # most widely implemented dialect of the protocol.
        protocol=2,
        **no_setinfo,
    )


class StoreSettings(Protocol):
    """The settings :func:`series_store_url` reads (``oxidicom.app.settings.Settings``)."""

    @property
    def series_store(self) -> str | None: ...

    @property
    def celery_broker(self) -> str | None: ...


def series_store_url(settings: StoreSettings) -> str | None:
    """The series store's URL: OXIDICOM_SERIES_STORE, else the Celery broker's when it is
    Redis (CUBE's DragonflyDB: replicas on several hosts then coordinate without a setting
    more); None: no store, OXIDICOM_SERIES_STORE=none or a broker that is not Redis
    (processes sharing one outbox settle series among themselves)."""
    if settings.series_store is not None:
        return None if settings.series_store == "none" else settings.series_store
    broker = settings.celery_broker
    if broker and parse_broker_url(broker).kind == "redis":
        return broker
    return None
