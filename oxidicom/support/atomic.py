"""A file that appears complete or not at all: write a temporary file, then rename it.

The temporary file is in the final file's filesystem (a rename is atomic only there)
and is removed on any failure, so that nothing half-written is left behind.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from oxidicom.support.extensions import load_compiled

#: Most buffers one writev takes on Linux (IOV_MAX); more is EINVAL.
IOV_MAX = 512
#: How a temporary file is opened: written from its start, never inherited by a child.
TEMP_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def write_all(fd: int, parts: list[bytes | memoryview]) -> int:
    """writev every part, however the kernel splits the writes; return the byte count."""
    if len(parts) <= IOV_MAX:
        # Nearly always: one writev takes everything (regular files rarely write short).
        expected = sum(map(len, parts))
        written = os.writev(fd, parts)
        if written == expected:
            return written
        total = written
        pending = _unwritten(parts, written)
    else:
        total = 0
        pending = [memoryview(p) for p in parts if len(p)]
    while pending:
        batch = pending[:IOV_MAX]
        written = os.writev(fd, batch)
        total += written
        # Drop what was written, keeping the unwritten tail of a part.
        while written and pending:
            head = pending[0]
            if len(head) <= written:
                written -= len(head)
                pending.pop(0)
            else:
                pending[0] = head[written:]
                written = 0
    return total


def _unwritten(parts: list[bytes | memoryview], written: int) -> list[memoryview]:
    """What is left of ``parts`` once their first ``written`` bytes are on disk."""
    pending = []
    for part in parts:
        size = len(part)
        if written >= size:
            written -= size
            continue
        pending.append(memoryview(part)[written:])
        written = 0
    return pending


def write_then_rename(
    temp: str,
    parts: list[bytes | memoryview],
    fsync: bool,
    mode: int,
    unlink: Callable[[str], None],
    rename: Callable[..., None],
    *rename_args: object,
) -> int:
    """Write ``parts`` to ``temp`` (fsync'd if asked), then ``rename(temp, *rename_args)``.

    Returns the bytes written. On any failure ``unlink(temp)`` runs before the error
    propagates, in the same call: once a caller reports the failure, nothing of the
    file is left. (Positional arguments only: it runs once per stored instance.)
    """
    try:
        fd = os.open(temp, TEMP_FILE_FLAGS, mode)
        try:
            size = write_all(fd, parts)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        rename(temp, *rename_args)
    except BaseException:
        unlink(temp)
        raise
    return size


#: The reference, whichever is in use (the differential tests call both).
write_then_rename_py = write_then_rename

# The compiled twin (oxidicom/support/_atomic_c.pyx): the same function over the C calls,
# with the uncommon cases (many parts, a short write) handed back to this module's code.
_c = load_compiled("oxidicom.support._atomic_c")
if _c is not None:
    _c.bind(sys.modules[__name__])
    write_then_rename = _c.write_then_rename
