"""The outbox promise over Redis: every fault of the broker is waited out, said once, counted,
and nothing is lost.

The publisher runs in this process against a real ``redis-server`` of the test's own, which
each test breaks the way an operator's broker breaks: down at start, killed and restarted
(with and without persistence), out of memory with ``noeviction``, turned into a read-only
replica, a password required or changed, a database number the server does not have. For
each: the registration stays in the outbox while the fault lasts, the fault is one WARNING
line however many attempts fail, the metrics say disconnected and count the fault by kind,
and once the fault clears the registration reaches the queue (a real ``BRPOP`` receives
it) and leaves the outbox.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from oxidicom.notify import publisher as publisher_module
from oxidicom.notify.celery import TASK_NAME
from oxidicom.notify.outbox import Outbox, Registration
from oxidicom.notify.redis_publisher import RedisPublisher
from oxidicom.telemetry.tallies import TALLIES
from tests.integration.redis_servers import PrivateRedis, free_port

pytestmark = pytest.mark.integration

QUEUE = "main2"
KWARGS = {
    "PatientID": "1449c1d",
    "StudyDate": "2013-03-08",
    "StudyInstanceUID": "1.2.3",
    "SeriesInstanceUID": "1.2.3.4",
    "pacs_name": "MYPACS",
    "path": "SERVICES/PACS/MYPACS/x/y/z",
    "ndicom": 192,
}


class LogWatch(logging.Handler):
    """Records the receiver's log records; lets a test await a matching one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._waiters: list[tuple[re.Pattern[str], int, asyncio.Future[None]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        for waiter in list(self._waiters):
            self._check(waiter)

    def matching(self, pattern: str, level: int | None = None) -> list[str]:
        regex = re.compile(pattern)
        return [
            r.getMessage()
            for r in self.records
            if regex.search(r.getMessage()) and (level is None or r.levelno == level)
        ]

    def _check(self, waiter: tuple[re.Pattern[str], int, asyncio.Future[None]]) -> None:
        regex, count, future = waiter
        found = sum(1 for r in self.records if regex.search(r.getMessage()))
        if found >= count and not future.done():
            future.set_result(None)

    async def wait_for(self, pattern: str, count: int = 1, timeout: float = 30.0) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (re.compile(pattern), count, future)
        self._waiters.append(waiter)
        self._check(waiter)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            lines = "\n".join(r.getMessage() for r in self.records)
            raise AssertionError(f"no {count} log line(s) matching {pattern!r}:\n{lines}") from None
        finally:
            self._waiters.remove(waiter)


@pytest.fixture
def log_watch() -> AsyncIterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("oxidicom")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watch)
    yield watch
    logger.removeHandler(watch)
    logger.setLevel(level)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries 50 ms apart, doubling: several failed attempts within a second."""
    monkeypatch.setattr(publisher_module, "FIRST_RETRY_DELAY", 0.05)
    monkeypatch.setattr(publisher_module, "MAX_RETRY_DELAY", 0.4)


@dataclass
class Fault:
    """How to break a server, what the receiver says about it, and how to mend it."""

    name: str
    #: The fault kind counted in oxidicom.broker.faults.
    kind: str
    #: What the one WARNING line must say.
    said: str
    #: Arguments of the server's start (before the fault, or the fault itself).
    start_args: tuple[str, ...] = ()
    #: The receiver's URL, from the server.
    url: Callable[[PrivateRedis], str] = lambda server: server.url(0)
    #: Break a running server (None: broken from its start).
    inject: Callable[[PrivateRedis], None] | None = None
    #: Mend it.
    clear: Callable[[PrivateRedis], None] = lambda server: None
    #: Does the fault show at publish (the entry's attempts are counted) or at connect?
    at_publish: bool = False


def _config(*args: str) -> Callable[[PrivateRedis], None]:
    def run(server: PrivateRedis) -> None:
        client = server.client()
        client.execute_command("CONFIG", "SET", *args)
        client.close()

    return run


def _replica_of_nothing(server: PrivateRedis) -> None:
    client = server.client()
    client.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
    client.close()


def _primary_again(server: PrivateRedis) -> None:
    client = server.client()
    client.execute_command("REPLICAOF", "NO", "ONE")
    client.close()


def _password(password: str) -> Callable[[PrivateRedis], None]:
    """Set (or, with "", remove) the server's password; the admin client follows."""

    def run(server: PrivateRedis) -> None:
        _config("requirepass", password)(server)
        server.password = password or None

    return run


def _restart_with(*args: str) -> Callable[[PrivateRedis], None]:
    def run(server: PrivateRedis) -> None:
        server.stop()
        server.start(*args)

    return run


FAULTS = [
    Fault(
        "out_of_memory",
        "out_of_memory",
        r"maxmemory reached with a noeviction policy",
        inject=_config("maxmemory", "1", "maxmemory-policy", "noeviction"),
        clear=_config("maxmemory", "0"),
        at_publish=True,
    ),
    Fault(
        "read_only_replica",
        "read_only",
        r"read-only replica",
        inject=_replica_of_nothing,
        clear=_primary_again,
        at_publish=True,
    ),
    Fault(
        "password_required",  # NOAUTH: the URL has none, the server wants one
        "authentication",
        r"refused our credentials",
        inject=_password("s3cret"),
        clear=_password(""),
    ),
    Fault(
        "wrong_password",  # WRONGPASS: the server's password changed under us
        "authentication",
        r"refused our credentials",
        url=lambda server: server.url(0, password="right"),
        start_args=("--requirepass", "other"),
        clear=_password("right"),
    ),
    Fault(
        "no_such_database",
        "no_such_database",
        r"no such database number",
        url=lambda server: server.url(5),
        start_args=("--databases", "2"),
        clear=_restart_with("--databases", "16"),
    ),
]


def _password_of(fault: Fault) -> str | None:
    return "other" if fault.name == "wrong_password" else None


async def _publisher(tmp_path: Path, url: str) -> tuple[RedisPublisher, Outbox, str]:
    outbox = Outbox(tmp_path / "outbox")
    outbox.prepare()
    name = outbox.add(Registration.new(TASK_NAME, QUEUE, dict(KWARGS)))
    publisher = RedisPublisher(url, outbox, origin="test@host")
    publisher.submit(name)
    return publisher, outbox, name


async def _received(server: PrivateRedis, database: int = 0) -> dict[str, object]:
    """The next message on the queue, from a real BRPOP (as kombu's worker takes it)."""
    client = server.client(database)
    try:
        popped = await asyncio.to_thread(client.brpop, [QUEUE], 30)
    finally:
        client.close()
    assert popped is not None, "no message reached the queue"
    return json.loads(popped[1])


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_a_broker_fault_is_waited_out_said_once_and_counted(
    tmp_path: Path, log_watch: LogWatch, fault: Fault
) -> None:
    server = PrivateRedis(tmp_path / "redis")
    server.start(*fault.start_args)
    server.password = _password_of(fault)
    publisher = None
    try:
        if fault.inject is not None:
            fault.inject(server)
        faults_before = TALLIES.broker_faults["Redis", fault.kind]
        publisher, outbox, name = await _publisher(tmp_path, fault.url(server))
        publisher.start()
        # Several failed attempts (the third is logged at DEBUG, as "(attempt 3)") ...
        await log_watch.wait_for(r"Redis broker at .*\(attempt 3\)")
        # ... said once, as a WARNING naming the fault; nothing left the outbox.
        assert len(log_watch.matching(fault.said, logging.WARNING)) == 1, log_watch.matching("")
        assert outbox.names() == [name]
        assert TALLIES.broker_faults["Redis", fault.kind] >= faults_before + 3
        # Refused on a working connection (kept), or not connected at all.
        assert TALLIES.broker_connected["Redis"] == (1 if fault.at_publish else 0)
        entry = json.loads((outbox.directory / name).read_text())
        if fault.at_publish:  # the attempts are recorded in the entry, with the reason
            assert entry["attempts"] >= 1 and re.search(fault.said, entry["last_error"])

        fault.clear(server)
        message = await _received(server, 5 if fault.name == "no_such_database" else 0)
        await log_watch.wait_for(r"registration sent: task ")
    finally:
        if publisher is not None:
            await publisher.stop(5)
        server.stop()
    body = json.loads(base64.b64decode(message["body"]))  # type: ignore[arg-type]
    assert body[1] == KWARGS
    assert outbox.names() == []
    # The end of the fault is one line too; a refusing server kept its one connection.
    connected = log_watch.matching(r"Redis connected to ")
    if fault.at_publish:
        assert len(connected) == 1, connected
        again = log_watch.matching(r"accepts registrations again after \d+ refused attempt")
        assert len(again) == 1, again
    else:
        assert len(connected) == 1 and "failed attempt(s)" in connected[0], connected
    assert TALLIES.broker_connected["Redis"] == 0  # stopped


@pytest.mark.parametrize("persistent", [False, True], ids=["no_persistence", "append_only"])
async def test_a_redis_restart_loses_no_registration(
    tmp_path: Path, log_watch: LogWatch, persistent: bool
) -> None:
    """Down at start, then up, then killed while registrations keep coming, then up again:
    every registration reaches the queue once it is back, none is lost. With persistence the
    ones pushed before the crash are still there after it; without, they are gone with the
    server's memory (the operator's choice, in the README), but were delivered to it."""
    server = PrivateRedis(tmp_path / "redis", persistent=persistent)
    outbox = Outbox(tmp_path / "outbox")
    outbox.prepare()
    publisher = RedisPublisher(server.url(0), outbox, origin="test@host")

    def add(series: str) -> None:
        registration = Registration.new(TASK_NAME, QUEUE, KWARGS | {"SeriesInstanceUID": series})
        publisher.submit(outbox.add(registration))

    try:
        add("down-at-start")
        publisher.start()
        await log_watch.wait_for(r"Redis broker at .*: unreachable")
        assert outbox.names() and TALLIES.broker_connected["Redis"] == 0
        server.start()
        await log_watch.wait_for(r"registration sent: .* of series down-at-start")
        add("before-the-crash")
        await log_watch.wait_for(r"registration sent: .* of series before-the-crash")
        server.stop()  # SIGKILL: a crash
        add("while-down")
        await log_watch.wait_for(r"Redis connection lost")
        assert len(outbox.names()) == 1
        server.start()
        await log_watch.wait_for(r"registration sent: .* of series while-down")
        client = server.client()
        queued = [json.loads(m) for m in client.lrange(QUEUE, 0, -1)]
        client.close()
    finally:
        await publisher.stop(5)
        server.stop()
    series = [json.loads(base64.b64decode(m["body"]))[1]["SeriesInstanceUID"] for m in queued]
    expected = ["down-at-start", "before-the-crash"] if persistent else []
    assert sorted(series) == sorted([*expected, "while-down"])
    assert outbox.names() == []
    # Each outage was told once as a WARNING, however many attempts it took: at start, and
    # after the crash (the loss itself is its own line, then the first failed reconnect).
    assert len(log_watch.matching(r"unreachable", logging.WARNING)) == 2


async def test_rediss_speaks_tls_and_refuses_a_server_it_cannot_verify(
    tmp_path: Path, log_watch: LogWatch
) -> None:
    """``rediss://`` with the CA as Celery's URLs give it (``ssl_ca_certs``, ``ssl_cert_reqs``):
    published over TLS; a server whose certificate another CA signed is never trusted: the
    registration waits, and the failure is said."""
    from tests.integration.tls_certs import make_ca, make_leaf

    ca = make_ca(tmp_path / "pki", "broker-ca")
    other_ca = make_ca(tmp_path / "pki", "someone-else")
    leaf = make_leaf(ca, tmp_path / "pki", "redis", server=True)
    server = PrivateRedis(tmp_path / "redis")
    server.start(
        "--port", "0", "--tls-port", str(server.port), "--tls-cert-file", str(leaf.cert),
        "--tls-key-file", str(leaf.key), "--tls-ca-cert-file", str(ca.cert),
        "--tls-auth-clients", "no",
    )  # fmt: skip

    def url(trusted: Path) -> str:
        return f"rediss://127.0.0.1:{server.port}/0?ssl_cert_reqs=required&ssl_ca_certs={trusted}"

    try:
        untrusting, outbox, name = await _publisher(tmp_path / "untrusting", url(other_ca.cert))
        untrusting.start()
        await log_watch.wait_for(r"Redis broker at .*\(attempt 2\)")
        await untrusting.stop(1)
        assert outbox.names() == [name]
        assert log_watch.matching(r"certificate verify failed", logging.WARNING)

        publisher, outbox, _ = await _publisher(tmp_path / "trusting", url(ca.cert))
        publisher.start()
        await log_watch.wait_for(r"registration sent: task ")
        await publisher.stop(5)
        import redis

        client = redis.Redis(
            "127.0.0.1", server.port, ssl=True, ssl_ca_certs=str(ca.cert), ssl_cert_reqs="required"
        )
        (message,) = [json.loads(m) for m in client.lrange(QUEUE, 0, -1)]
        client.close()
    finally:
        server.stop()
    assert json.loads(base64.b64decode(message["body"]))[1] == KWARGS
    assert outbox.names() == []
