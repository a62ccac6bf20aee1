"""A private redis-server for a test: its own port, its own folder, stopped after."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.integration.services import _unavailable

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RedisServer:
    """One redis-server process; ``restart`` keeps its port (and its data if persisted)."""

    folder: Path
    port: int
    persist: bool
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else []
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", self.host,
                "--dir", str(self.folder),
                "--save", "",
                "--appendonly", "no",
                *persistence,
                "--protected-mode", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server on port {self.port} exited")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.02)  # polling a port that is not listening yet: no event to await
        raise AssertionError(f"redis-server on port {self.port} does not answer")

    def seasoned(self) -> None:
        """As if replicas had used it for an hour: no grace after a first use (see
        oxidicom.notify.series_scripts), for tests that are not about restarts."""
        import redis

        client = redis.Redis(host=self.host, port=self.port)
        try:
            now = int(time.time() * 1000)
            client.hset("{oxidicom-series}:meta", mapping={"beat": now, "since": now - 3_600_000})
        finally:
            client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(20)
        self.process = None

    def restart(self) -> None:
        self.stop(signal.SIGKILL if not self.persist else signal.SIGTERM)
        self.start()


@contextlib.contextmanager
def redis_server(
    folder: Path, *, persist: bool = False, host: str = "127.0.0.1"
) -> Iterator[RedisServer]:
    if shutil.which(REDIS_SERVER) is None:
        _unavailable(f"{REDIS_SERVER} is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    server = RedisServer(folder, free_port(), persist, host)
    server.start()
    try:
        yield server
    finally:
        server.stop()
