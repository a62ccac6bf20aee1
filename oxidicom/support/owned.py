"""Folders owned by a live process: is this one's owner gone?

A process that works in a folder of its own holds an exclusive ``flock`` on the
:data:`LOCK_NAME` file inside it for as long as it lives; the kernel (or the NFS lock
manager) drops the lock when the process dies, however it dies. Another process that
takes that lock therefore knows the owner is gone, and holds the lock while it cleans
up, so that a third one does not clean up the same folder at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

LOCK_NAME = ".lock"


class Owner(Enum):
    """What :func:`judge_owner` found."""

    #: No lock file: never locked (its owner died at birth, or is being born).
    UNKNOWN = "unknown"
    #: Locked by a live process, or locks are not supported here: keep the folder.
    ALIVE = "alive"
    #: Another process took the lock first and removed the lock file: not ours.
    TAKEN = "taken"
    #: Gone: we hold its lock until the ``with`` block ends; the folder is ours to clean.
    GONE = "gone"


@contextlib.contextmanager
def judge_owner(folder: Path) -> Iterator[Owner]:
    """Whether ``folder``'s owner is gone; if so, its lock is held inside the block."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield Owner.UNKNOWN
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield Owner.ALIVE
            return
        yield Owner.TAKEN if os.fstat(fd).st_nlink == 0 else Owner.GONE
    finally:
        os.close(fd)
