"""The registration outbox: one JSON file per series registration, until the broker has it.

A registration is written here before it is published, and the file is removed only once
the broker confirmed the message (publisher confirms). A crash, a broker outage or a restart
therefore loses nothing: the next connection (of this process or of the next run) publishes
what is left. A repeat is harmless (CUBE ignores a series it already registered).

Files (``{created_ns:020d}-{task_id}.json``, so ``ls`` lists them oldest first) are written
atomically: a hidden temporary file in the same directory, ``fsync``, ``rename``, ``fsync`` of
the directory. Each holds what an operator needs to read or replay it::

    {"version": 1, "task": "pacsfiles.tasks.register_pacs_series", "task_id": "...",
     "queue": "main2", "created": "2024-05-01T12:00:00.000000Z", "attempts": 0,
     "last_error": null, "kwargs": {"PatientID": "...", ...}}

Several receiver processes may share one outbox. Whoever publishes an entry first *claims*
it with ``flock(LOCK_EX | LOCK_NB)`` on the open file: a second claimer is refused while the
first holds it, and the kernel releases the lock when its holder dies, so a crashed
process's entries become claimable again. A claimer that wins the lock after the holder
removed (or replaced) the file sees a link count of 0 and lets go.

Everything here blocks (disk I/O): call it in the event loop's default executor.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from oxidicom.support.atomic import write_all

log = logging.getLogger("oxidicom.outbox")

VERSION: Final = 1
SUFFIX: Final = ".json"
#: A file that could not be read as a registration is renamed with this suffix, and kept.
INVALID_SUFFIX: Final = ".invalid"
_TEMP_SUFFIX: Final = ".tmp"
#: Registrations hold patient data: readable by their owner only.
_FILE_MODE: Final = 0o600


@dataclass(frozen=True, slots=True)
class Registration:
    """One pending Celery task: what to send, where, and how it went so far."""

    task: str
    task_id: str
    queue: str
    kwargs: dict[str, Any]
    created: str
    attempts: int = 0
    last_error: str | None = None
    #: The association that stored the series, and its W3C trace context when traced, so
    #: that a publish (even after a restart) is linked to it.
    association_id: str | None = None
    traceparent: str | None = None
    created_ns: int = field(default=0, compare=False)

    @classmethod
    def new(
        cls,
        task: str,
        queue: str,
        kwargs: dict[str, Any],
        *,
        association_id: str | None = None,
        traceparent: str | None = None,
    ) -> Registration:
        now = time.time_ns()
        stamp = datetime.fromtimestamp(now / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return cls(
            task,
            str(uuid.uuid4()),
            queue,
            kwargs,
            stamp,
            association_id=association_id,
            traceparent=traceparent,
            created_ns=now,
        )

    @property
    def file_name(self) -> str:
        return f"{self.created_ns:020d}-{self.task_id}{SUFFIX}"

    def to_json(self) -> bytes:
        document = {
            "version": VERSION,
            "task": self.task,
            "task_id": self.task_id,
            "queue": self.queue,
            "created": self.created,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "association_id": self.association_id,
            "traceparent": self.traceparent,
            "kwargs": self.kwargs,
        }
        return (json.dumps(document, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Registration:
        """Parse a file's content; ValueError when it is not a registration."""
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("version") != VERSION:
            raise ValueError("not a version 1 registration")
        try:
            registration = cls(
                task=document["task"],
                task_id=document["task_id"],
                queue=document["queue"],
                kwargs=document["kwargs"],
                created=document["created"],
                attempts=document.get("attempts", 0),
                last_error=document.get("last_error"),
                association_id=document.get("association_id"),
                traceparent=document.get("traceparent"),
            )
        except KeyError as error:
            raise ValueError(f"missing {error}") from None
        if not (
            isinstance(registration.task, str)
            and isinstance(registration.task_id, str)
            and isinstance(registration.queue, str)
            and isinstance(registration.kwargs, dict)
            and isinstance(registration.attempts, int)
            and isinstance(registration.association_id, str | None)
            and isinstance(registration.traceparent, str | None)
        ):
            raise ValueError("a field has the wrong type")
        return registration


class Claim:
    """An entry this process is publishing; nobody else can claim it meanwhile."""

    def __init__(self, outbox: Outbox, name: str, fd: int, registration: Registration) -> None:
        self.outbox = outbox
        self.name = name
        self.registration = registration
        self._fd: int | None = fd

    def done(self) -> None:
        """The broker confirmed it: remove the entry (still holding the lock), let go."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.outbox.directory / self.name)
        self.close()

    def failed(self, error: str) -> None:
        """Publishing failed: count the attempt in the file, let go (the entry stays)."""
        updated = replace(self.registration, attempts=self.registration.attempts + 1)
        updated = replace(updated, last_error=error[:500])
        try:
            # We hold the lock of the file being replaced; the new file is claimable as
            # soon as it is in place, which is what letting go means.
            self.outbox.write(self.name, updated.to_json(), sync_directory=False)
        except OSError as write_error:
            log.warning("cannot record the failed attempt in %s: %s", self.name, write_error)
        self.close()

    def close(self) -> None:
        """Let go without changing the entry."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Outbox:
    """A directory of registrations waiting for the broker."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def prepare(self) -> None:
        """Create the directory; remove temporary files that no writer holds any more."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.glob(f".*{_TEMP_SUFFIX}"):
            fd = _open_locked(path)
            if fd is not None:
                # Unlocked: its writer died before the rename. (A writer that loses its
                # file this way between open and flock notices and writes it again.)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                os.close(fd)

    def add(self, registration: Registration, *, sync_directory: bool = True) -> str:
        """Write a new entry durably; return its name.

        Without ``sync_directory``, the entry is durable only after :meth:`sync`: a batch
        of entries pays for one directory ``fsync``.
        """
        name = registration.file_name
        self.write(name, registration.to_json(), sync_directory=sync_directory)
        return name

    def sync(self) -> None:
        """``fsync`` the directory: the entries added before are durable."""
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def write(self, name: str, content: bytes, *, sync_directory: bool) -> None:
        """Atomically create or replace ``name`` with ``content``."""
        final = self.directory / name
        while True:
            temp = self.directory / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{_TEMP_SUFFIX}"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
            try:
                # Held until the rename: prepare() of another process leaves it alone.
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_nlink == 0:
                    continue  # removed between open and flock by prepare(): write it again
                write_all(fd, [content])
                os.fsync(fd)
                os.rename(temp, final)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise
            finally:
                os.close(fd)
            break
        if sync_directory:
            self.sync()

    def names(self) -> list[str]:
        """The entries, oldest first."""
        try:
            entries = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(n for n in entries if n.endswith(SUFFIX) and not n.startswith("."))

    def claim(self, name: str) -> Claim | None:
        """Take an entry for publishing, or None if it is gone or someone else has it."""
        path = self.directory / name
        fd = _open_locked(path)
        if fd is None:
            return None
        try:
            if os.fstat(fd).st_nlink == 0:
                os.close(fd)
                return None  # published and removed (or replaced) by its previous holder
            data = _read_all(fd)
        except OSError as error:
            os.close(fd)
            log.warning("cannot read outbox entry %s: %s", name, error)
            return None
        try:
            registration = Registration.from_json(data)
        except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError included
            os.close(fd)
            self._set_aside(name, error)
            return None
        return Claim(self, name, fd, replace(registration, created_ns=_created_ns(name)))

    def _set_aside(self, name: str, error: Exception) -> None:
        log.error(
            "outbox entry %s is not a registration (%s): renamed to %s%s, not sent",
            name,
            error,
            name,
            INVALID_SUFFIX,
        )
        with contextlib.suppress(OSError):
            os.rename(self.directory / name, self.directory / f"{name}{INVALID_SUFFIX}")


def _open_locked(path: Path) -> int | None:
    """Open ``path`` and take its exclusive lock without waiting; None if impossible."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _created_ns(name: str) -> int:
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else 0
