"""Real Redis for the broker tests: a database of the shared server, or a private server.

The shared server (127.0.0.1:6379, CUBE's broker protocol) is used one database per test:
:func:`claimed_database` takes a database nobody uses (an atomic ``SET NX`` marker), and
empties it afterwards. The fault tests need a server they may stop, restart, reconfigure
and break: :class:`PrivateRedis` runs ``redis-server`` on a free port of its own.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.redis_server import REDIS_SERVER, free_port
from tests.integration.services import LoggedProcess, _unavailable

SHARED_REDIS = ("127.0.0.1", 6379)
#: Databases 1-7 of the shared server are the broker tests'; 0 is left to people.
_TEST_DATABASES = range(1, 8)
_CLAIM_KEY = "oxidicom-test-claim"


def require_redis_package() -> None:
    try:
        import redis  # noqa: F401
    except ImportError:
        _unavailable("the redis package is not installed (pip install -e '.[test]')")


@contextlib.contextmanager
def claimed_database() -> Iterator[str]:
    """The URL of a database of the shared Redis that this test alone uses, emptied after;
    skips (fails under CI) when the server is not there."""
    require_redis_package()
    import redis

    token = uuid.uuid4().hex
    for number in _TEST_DATABASES:
        client = redis.Redis(*SHARED_REDIS, db=number, socket_connect_timeout=2)
        try:
            # Taken only if nobody holds the marker and nothing else is in it.
            if client.dbsize() == 0 and client.set(_CLAIM_KEY, token, nx=True, ex=3600):
                break
        except redis.exceptions.ConnectionError as error:
            client.close()
            _unavailable(f"Redis is not reachable at {SHARED_REDIS[0]}:{SHARED_REDIS[1]} ({error})")
        client.close()
    else:
        pytest.fail(f"every test database {list(_TEST_DATABASES)} of the shared Redis is in use")
    try:
        yield f"redis://{SHARED_REDIS[0]}:{SHARED_REDIS[1]}/{number}"
    finally:
        client = redis.Redis(*SHARED_REDIS, db=number)
        with contextlib.suppress(redis.exceptions.RedisError):
            client.flushdb()
        client.close()


class PrivateRedis:
    """``redis-server`` on a free port of loopback, for a test to stop, restart and break.

    Nothing is kept on disk (no RDB, no AOF) unless ``persistent``: then an append-only file
    in ``directory`` (``appendfsync always``), so a restart gives back what was acknowledged.
    """

    def __init__(self, directory: Path, *, persistent: bool = False, extra: tuple[str, ...] = ()):
        if shutil.which(REDIS_SERVER) is None:
            _unavailable(f"{REDIS_SERVER} is not installed (apt-get install redis-server)")
        require_redis_package()
        self.directory = directory
        self.persistent = persistent
        self.extra = extra
        self.port = free_port()
        self.password: str | None = None
        self._process: LoggedProcess | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def url(self, database: int = 0, password: str | None = None) -> str:
        auth = f":{password}@" if password is not None else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{database}"

    def start(self, *extra: str) -> None:
        persistence = (
            ("--appendonly", "yes", "--appendfsync", "always")
            if self.persistent
            else ("--appendonly", "no")
        )
        self._process = LoggedProcess(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(self.directory),
                *persistence,
                *self.extra,
                *extra,
            ],
            env={},
            cwd=self.directory,
        )
        self._process.wait_for(r"Ready to accept connections", timeout=30)

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Stop the server (by default as a crash: nothing flushed that was not already)."""
        if self._process is not None:
            self._process.stop(timeout=30, sig=sig)
            self._process = None

    def client(self, database: int = 0):  # -> redis.Redis (the import is lazy)
        import redis

        return redis.Redis("127.0.0.1", self.port, db=database, password=self.password)

    def output(self) -> str:
        return self._process.output() if self._process is not None else ""


@contextlib.contextmanager
def private_redis(directory: Path, **options: object) -> Iterator[PrivateRedis]:
    server = PrivateRedis(directory, **options)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()
