"""Real brokers and their clients for the notification tests: RabbitMQ, NATS, a Celery worker
standing in for CUBE's, and a TCP proxy the tests stop to make the broker unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import IN_CI

RABBITMQ = ("127.0.0.1", 5672)
NATS = ("127.0.0.1", 4222)
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
NATS_URL = "nats://127.0.0.1:4222"
REPO = Path(__file__).resolve().parents[2]


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_service(name: str, address: tuple[str, int]) -> None:
    """A broker we test against for real; skip (fail under CI) when it is not listening."""
    try:
        with socket.create_connection(address, timeout=2):
            pass
    except OSError as error:
        _unavailable(f"{name} is not reachable at {address[0]}:{address[1]} ({error})")


def require_celery() -> None:
    try:
        import celery  # noqa: F401
    except ImportError:
        _unavailable("the celery package is not installed (pip install -e '.[test]')")


def unique(prefix: str) -> str:
    """A queue name / NATS root subject no concurrent test run shares."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


# -- a process whose output we wait on -------------------------------------------------


class LoggedProcess:
    """A child process whose output lines are collected by a thread, for waiting on."""

    def __init__(self, command: list[str], *, env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def matching(self, pattern: str) -> list[re.Match[str]]:
        regex = re.compile(pattern)
        with self._changed:
            return [m for m in map(regex.search, self.lines) if m]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 60.0) -> list[re.Match[str]]:
        """Block until ``count`` lines match (woken by each new line, no polling)."""
        regex = re.compile(pattern)
        with self._changed:
            while True:
                found = [m for m in map(regex.search, self.lines) if m]
                if len(found) >= count:
                    return found
                if not self._reader.is_alive():
                    raise AssertionError(f"process exited; output:\n{self.output()}")
                if not self._changed.wait(timeout):
                    raise AssertionError(
                        f"{count} line(s) matching {pattern!r} not seen in {timeout} s;"
                        f" output:\n{self.output()}"
                    )

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, timeout: float = 30.0, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._reader.join(10)
        return code


# -- the Celery worker standing in for CUBE's --------------------------------------------


class CeleryWorker(LoggedProcess):
    """``celery worker`` running tests/integration/cube_tasks.py, consuming one queue."""

    def __init__(self, queue: str, broker: str = AMQP_URL, also: tuple[str, ...] = ()) -> None:
        """``also``: more queues the worker consumes besides ``queue`` (CUBE's run
        ``-Q main1,main2``)."""
        self.queue = queue
        self.broker = broker
        env = {**os.environ, "CUBE_TEST_BROKER": broker, "PYTHONUNBUFFERED": "1"}
        super().__init__(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.integration.cube_tasks",
                "worker",
                "--queues",
                ",".join((*also, queue)),
                "--pool",
                "solo",
                "--hostname",
                f"{queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            env=env,
            cwd=REPO,
        )
        self.wait_for(r"\bready\.", timeout=60)

    def registrations(self) -> list[dict[str, Any]]:
        return [json.loads(m.group(1)) for m in self.matching(r"REGISTERED (\{.*\})$")]

    def wait_for_registrations(self, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        self.wait_for(r"REGISTERED \{", count, timeout)
        return self.registrations()

    def drain(self, timeout: float = 60.0) -> None:
        """Return once every message queued before this call has been run (FIFO queue,
        one solo worker: a sentinel task sent now runs after all of them)."""
        token = uuid.uuid4().hex
        from tests.integration.cube_tasks import app

        if self.broker == AMQP_URL:
            app.send_task("tests.sentinel", args=[token], queue=self.queue)
        else:
            with app.connection_for_write(self.broker) as connection:
                app.send_task(
                    "tests.sentinel", args=[token], queue=self.queue, connection=connection
                )
        self.wait_for(rf"SENTINEL {token}", timeout=timeout)

    def stop(self, timeout: float = 30.0) -> int:
        # Celery's shutdown (warm or cold) waits for its event loop's next wake-up, up to
        # 10 s. Its tasks are acknowledged before they run and its queue is deleted next:
        # killing it loses nothing of the test's.
        code = super().stop(timeout, signal.SIGKILL)
        if self.broker == AMQP_URL:
            delete_queue(self.queue)
        return code


@contextlib.contextmanager
def celery_worker() -> Iterator[CeleryWorker]:
    """A Celery 5 worker with CUBE's task on a queue of its own, deleted afterwards; skips
    (fails under CI) without RabbitMQ or the celery package."""
    require_service("RabbitMQ", RABBITMQ)
    require_celery()
    running = CeleryWorker(unique("oxidicom-test-"))
    try:
        yield running
    finally:
        running.stop()


def delete_queue(queue: str) -> None:
    """Remove a test queue and its exchange (RabbitMQ is shared with other test runs)."""
    from kombu import Connection

    with contextlib.suppress(Exception), Connection(AMQP_URL) as connection:
        channel = connection.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)


# -- NATS ------------------------------------------------------------------------------


class LonkCollector:
    """Subscribes to ``{root}.>`` and records every LONK message per subject."""

    def __init__(self, root_subject: str) -> None:
        self.root_subject = root_subject
        self.messages: list[tuple[str, bytes]] = []
        self._changed = asyncio.Condition()
        self._client: Any = None

    async def start(self) -> None:
        import nats

        self._client = await nats.connect(NATS_URL)

        async def received(message: Any) -> None:
            async with self._changed:
                self.messages.append((message.subject, message.data))
                self._changed.notify_all()

        await self._client.subscribe(f"{self.root_subject}.>", cb=received)
        await self._client.flush()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    def subject(self, pacs: str, series_instance_uid: str) -> str:
        uid = series_instance_uid.replace(".", "_")
        return f"{self.root_subject}.{pacs}.{uid}"

    def decoded(self, subject: str) -> list[str]:
        """``["1", "57", ..., "done"]`` / ``"error:..."`` for one subject, in arrival order."""
        return [decode_lonk(data) for s, data in self.messages if s == subject]

    async def wait_until(self, done: Callable[[], bool], timeout: float = 120.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(done), timeout)

    async def settle(self) -> None:
        """A round trip to the server: everything it routed to us before is now here."""
        await self._client.flush()


@contextlib.asynccontextmanager
async def lonk_collector() -> AsyncIterator[LonkCollector]:
    """A NATS subscriber under a root subject of its own; skips (fails under CI) without NATS."""
    require_service("NATS", NATS)
    collector = LonkCollector(unique("oxitest"))
    await collector.start()
    try:
        yield collector
    finally:
        await collector.close()


def decode_lonk(data: bytes) -> str:
    if data == b"\x00":
        return "done"
    if data[:1] == b"\x01" and len(data) == 5:
        return str(struct.unpack_from("<I", data, 1)[0])
    if data[:1] == b"\x02":
        return "error:" + data[1:].decode()
    raise AssertionError(f"not a LONK message: {data!r}")


def assert_progress_contract(messages: list[str], ndicom: int) -> None:
    """CONTRACT section 4: progress 1 first, counts strictly increasing, the final count
    = ndicom, done last."""
    assert messages, "no LONK message"
    assert messages[0] == "1", messages
    assert messages[-1] == "done", messages
    counts = [int(m) for m in messages[:-1]]  # raises if anything else is in between
    assert all(a < b for a, b in itertools.pairwise(counts)), messages
    assert counts[-1] == ndicom, messages


# -- registrations: what the worker ran and what the outbox holds ----------------------


def outbox_entries(outbox_dir: Path) -> list[dict[str, Any]]:
    """The registrations waiting in an outbox directory, oldest first."""
    if not outbox_dir.exists():
        return []
    names = sorted(p for p in outbox_dir.iterdir() if p.name.endswith(".json"))
    return [json.loads(p.read_text()) for p in names]


def ndicom_by_series(registrations: list[dict[str, Any]]) -> dict[tuple[str, str], list[int]]:
    """(pacs_name, SeriesInstanceUID) -> the ``ndicom`` of each registration of it (task
    kwargs, or outbox entries' kwargs): one item per series means exactly once."""
    found: dict[tuple[str, str], list[int]] = {}
    for kwargs in registrations:
        key = (kwargs["pacs_name"], kwargs["SeriesInstanceUID"])
        found.setdefault(key, []).append(kwargs["ndicom"])
    return found


# -- a TCP proxy the test can take down ------------------------------------------------


class TcpProxy:
    """Forwards a local port to ``target``; :meth:`stop` closes the port and cuts every
    connection (the broker looks dead), :meth:`start` opens the same port again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Cut the connections before waiting: since Python 3.12.1, wait_closed() also
        # waits for the server's connections to end.
        for writer in list(self._connections):
            writer.transport.abort()
        self._connections.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Known from the start: a stop() while this one still connects upstream must cut it
        # too, or wait_closed() waits for it for ever (a receiver's second worker connecting
        # to the broker just as the test stops the proxy).
        self._connections.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self._connections.discard(writer)
            writer.transport.abort()
            return
        if writer not in self._connections:  # cut by stop() meanwhile
            up_writer.transport.abort()
            return
        self._connections.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._connections.difference_update((writer, up_writer))
