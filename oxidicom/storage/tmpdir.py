"""Temporary folders of live receivers, safe when several share one FILES_ROOT.

Replicas (and worker processes) that share CUBE's storage all write temporary files
under ``{FILES_ROOT}/.oxidicom-tmp``. Each process works in a folder of its own,
named at random (pids repeat across containers), and holds an exclusive ``flock`` on
the ``.lock`` file inside it for as long as it lives; the kernel (or the NFS lock
manager) drops the lock when the process dies, however it dies.

At start a receiver removes what dead processes left: a folder whose lock it can take
(its owner died, however recently: a receiver restarted after a crash cleans up at
once), or a folder without a lock file older than :data:`GRACE_SECONDS` (its owner may
be between ``mkdir`` and creating the lock). A folder whose lock cannot be queried (a
filesystem without locks) is kept: when in doubt, keep. An owner that finds its lock
file unlinked right after locking it (a remover won that race) starts over in a new
folder. Loose files directly in ``.oxidicom-tmp`` (the layout of earlier versions) go
once they are older than the grace period.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from oxidicom.support.owned import LOCK_NAME, Owner, judge_owner

log = logging.getLogger("oxidicom.storage")

#: A folder this young may belong to a process that has not locked it yet.
GRACE_SECONDS = 60.0
#: Fresh folders tried by :meth:`WorkDir.claim` while other processes hold their locks.
_CLAIM_ATTEMPTS = 100


class WorkDir:
    """This process's own folder of temporary files, locked while we live."""

    def __init__(self, tmp_root: Path, family: str = "") -> None:
        #: Prefixes the folder's name: the workers of one supervisor share it, so that
        #: each can tell its siblings from other receivers (see SeriesJournal).
        self.family = family
        # Random per store (pids repeat across containers; one process may have two).
        self.path = tmp_root / self._name()
        self._lock_fd: int | None = None

    def _name(self) -> str:
        return f"{self.family}{uuid.uuid4().hex}"

    def claim(self) -> None:
        """Create the folder and lock it (at start, before any temporary file)."""
        attempts = 0
        while True:
            attempts += 1
            self.path.mkdir(parents=True, exist_ok=True)
            # Read-only: flock needs no write access, and a writable descriptor held for
            # our whole life would keep the filesystem from being remounted read-only.
            fd = os.open(self.path / LOCK_NAME, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if attempts >= _CLAIM_ATTEMPTS:
                    raise
                # A process starting at the same moment holds the lock of our new folder
                # while it judges whether the folder's owner is dead (it was not locked
                # yet): it may remove the folder. Start over elsewhere.
                self.path = self.path.parent / self._name()
                continue
            except OSError as error:
                # No locks on this filesystem: others cannot tell we are alive, but they
                # cannot tell we are dead either, so they keep our folder.
                log.warning(
                    "cannot lock %s (%s): stale temporary files will stay", self.path, error
                )
            else:
                if os.fstat(fd).st_nlink == 0:
                    # A starting receiver took our lock between open and flock and removed
                    # the folder as a dead one: start over elsewhere.
                    os.close(fd)
                    self.path = self.path.parent / self._name()
                    continue
            self._lock_fd = fd
            return

    def release(self) -> None:
        """Remove the folder if empty and let go of the lock (at a clean stop)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            if [p.name for p in self.path.iterdir()] == [LOCK_NAME]:
                os.unlink(self.path / LOCK_NAME)
                os.rmdir(self.path)
        os.close(fd)


def remove_stale(tmp_root: Path, own: Path | None, now: float | None = None) -> int:
    """Remove the temporary files of dead processes; return how many files went."""
    removed = 0
    cutoff = (time.time() if now is None else now) - GRACE_SECONDS
    for entry in os.scandir(tmp_root):
        try:
            if entry.is_dir(follow_symlinks=False):
                if own is not None and entry.path == str(own):
                    continue
                old = entry.stat(follow_symlinks=False).st_mtime <= cutoff
                removed += _remove_if_dead(Path(entry.path), old)
            elif entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue  # another receiver cleaned it up at the same moment
    return removed


def _remove_if_dead(folder: Path, old: bool) -> int:
    with judge_owner(folder) as owner:
        if owner is Owner.GONE:
            return _remove_folder(folder)  # holding its lock
        # Never locked: if old, its owner died at birth; if young, it may be being born.
        # Otherwise locked by a live process, locks unsupported, or another remover's.
        return _remove_folder(folder) if owner is Owner.UNKNOWN and old else 0


def _remove_folder(folder: Path) -> int:
    files = sum(1 for p in folder.iterdir() if p.name != LOCK_NAME)
    shutil.rmtree(folder, ignore_errors=True)
    return files
