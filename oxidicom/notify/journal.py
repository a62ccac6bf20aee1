"""The series journal: registrations of running associations, for a receiver that is killed.

A series is registered when its association ends. A receiver killed with SIGKILL (or by
the OOM killer) never sees that end, and without a record the files it had acknowledged
would stay in CUBE's storage, unregistered. So when an association stores the first
file of a series, the registration it will send is written here first, before the
success status leaves: one line of JSON (queue, association, trace context and the
task's keyword arguments) in ``{OUTBOX_DIR}/.journal/{random}/``. It is removed once
the real registration is in the outbox; meanwhile it is also where the registration's
fields are kept (read back when the association ends), not the receiver's memory. At
start, the entries of dead processes become outbox registrations, with ``ndicom``
counted from the ``.dcm`` files in the series folder (which may include files that
other associations stored there: CUBE registers the folder either way).

Each process journals in a folder of its own, locked while it lives, exactly like the
temporary folders of :mod:`oxidicom.storage.tmpdir`: a starting process recovers only
the folders of processes that are gone. That includes a process that stopped cleanly
while its outbox could not be written: its entries stay, its folder is unlocked at the
stop, and the next start registers them. Entries are written without fsync, once per
series and association: they survive the death of the process (they are in the page
cache), not a power cut. Everything here blocks; entries are a few hundred bytes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import msgspec

from oxidicom.notify.celery import TASK_NAME
from oxidicom.notify.outbox import INVALID_SUFFIX, Outbox, Registration
from oxidicom.storage.tmpdir import LOCK_NAME, WorkDir

log = logging.getLogger("oxidicom.registrations")

JOURNAL_DIR_NAME = ".journal"
_SUFFIX = ".json"


class JournalEntry(msgspec.Struct, frozen=True):
    """What the registration of a series will need: one line of JSON on disk."""

    queue: str
    kwargs: dict[str, Any]
    association_id: str | None = None
    traceparent: str | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(JournalEntry).decode


class SeriesJournal:
    """This process's journal folder, and the recovery of dead processes' folders."""

    def __init__(self, outbox_dir: Path, files_root: Path) -> None:
        self.root = outbox_dir / JOURNAL_DIR_NAME
        self.files_root = files_root
        self.work_dir = WorkDir(self.root)
        self._prefix = ""

    def prepare(self) -> None:
        """Create and lock our folder (at start)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.work_dir.claim()
        self._prefix = f"{self.work_dir.path}/"

    def record(self, key: str, entry: JournalEntry) -> None:
        """Write (or replace) entry ``key``; it is whole or absent, never partial."""
        final = f"{self._prefix}{key}{_SUFFIX}"
        temp = f"{self._prefix}.{key}.tmp"
        data = _encode(entry)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            try:
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            finally:
                os.close(fd)
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def read(self, key: str) -> JournalEntry:
        """Entry ``key`` (OSError, or ValueError when it is not an entry)."""
        with open(f"{self._prefix}{key}{_SUFFIX}", "rb") as file:
            data = file.read()
        try:
            return _decode(data)
        except msgspec.DecodeError as error:
            raise ValueError(str(error)) from None

    def forget(self, key: str) -> None:
        """Remove entry ``key`` (its registration is in the outbox)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{self._prefix}{key}{_SUFFIX}")

    def release(self) -> None:
        """At a clean stop: remove our folder if no entry is left in it, and unlock it.

        Entries left (registrations the outbox could not take) stay for the next start.
        """
        self.work_dir.release()

    def recover(self, outbox: Outbox) -> int:
        """Turn the entries of gone processes into outbox registrations; return how many."""
        recovered = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root):
                if entry.is_dir(follow_symlinks=False) and entry.path != str(self.work_dir.path):
                    recovered += self._recover_folder(Path(entry.path), outbox)
        return recovered

    def _recover_folder(self, folder: Path, outbox: Outbox) -> int:
        try:
            fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0  # being created by a starting process (or gone): not ours to judge
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return 0  # its process lives (or locks are unsupported: keep it)
            if os.fstat(fd).st_nlink == 0:
                return 0  # another starting process recovered it first
            recovered = 0
            for path in sorted(folder.glob(f"*{_SUFFIX}")):
                try:
                    recovered += self._recover_entry(path, outbox)
                except OSError as error:
                    # The outbox cannot be written either: keep the folder (unlocked,
                    # so the next start tries again) and this run's own journal works.
                    log.error(
                        "cannot register journal entry %s in the outbox %s: %s; kept for"
                        " the next start",
                        path,
                        outbox.directory,
                        error,
                    )
                    return recovered
            shutil.rmtree(folder, ignore_errors=True)
            return recovered
        finally:
            os.close(fd)

    def _recover_entry(self, path: Path, outbox: Outbox) -> int:
        try:
            journaled = _decode(path.read_bytes())
            series_dir = self.files_root / journaled.kwargs["path"]
        except (OSError, msgspec.DecodeError, KeyError, TypeError) as error:
            aside = outbox.directory / f"journal-{path.stem}{INVALID_SUFFIX}"
            log.warning("journal entry %s is unreadable (%s): kept as %s", path, error, aside)
            with contextlib.suppress(OSError):
                path.rename(aside)
            return 0
        try:
            files = sum(1 for p in series_dir.iterdir() if p.suffix == ".dcm" and p.is_file())
        except FileNotFoundError:
            files = 0
        if files:
            registration = Registration.new(
                TASK_NAME,
                journaled.queue,
                journaled.kwargs | {"ndicom": files},
                association_id=journaled.association_id,
                traceparent=journaled.traceparent,
            )
            outbox.add(registration)
            log.warning(
                "series %s of association %s, left in the journal by an earlier run"
                " (killed, or stopped while its outbox could not be written): registration"
                " of %d file(s) in the outbox: task %s",
                journaled.kwargs.get("SeriesInstanceUID"),
                journaled.association_id,
                files,
                registration.task_id,
            )
        path.unlink()
        return 1 if files else 0
