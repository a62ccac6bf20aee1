"""Where the kernel writes a connection's bytes: slabs we own, reused once nothing views them.

With a plain ``asyncio.Protocol`` every read costs a copy of the data in user space:
uvloop reads into its loop-wide buffer and copies each read into a new ``bytes``. As an
``asyncio.BufferedProtocol`` the connection lends the transport a region of a slab of
its own instead (``get_buffer``), the kernel writes there, and what arrived is handed
on as a view (``buffer_updated``). The Upper Layer splits those views into PDV data
without copying, the writer keeps them until it ``writev``\\ s them, and a data set's
bytes cross user space once: from the kernel into the slab.

A region is lent only where no view handed out earlier can see it: the free tail of
the current slab, or a whole slab that no view of any kind is alive on. The latter is
known exactly in CPython: every ``memoryview(slab)`` and every slice of one holds a
reference to the slab (through its managed buffer), so a slab whose only references
are ours is viewed by nobody. A slab being viewed is never written; it is left alone
until its views are gone, then reused. A view pins its whole slab (512 KiB) until it
goes, where it pinned one read's ``bytes`` (up to 256 KiB) before.
"""

from __future__ import annotations

import sys

#: Bytes of one slab.
SLAB_SIZE = 512 * 1024
#: No region lent is smaller than uvloop's own read buffer (UV_STREAM_RECV_BUF_SIZE):
#: no read is shorter than with a plain protocol.
MIN_LENT = 256 * 1024
#: Free slabs kept for reuse by every connection of the process (above: freed). Enough
#: for the writer's streaming batches of one instance (2 x 4 MiB) to cycle without
#: allocating (and zeroing) new ones.
MAX_FREE_SLABS = 16

_getrefcount = sys.getrefcount


def _references_when_unviewed() -> int:
    """What ``getrefcount`` says of a slab held in one container and one local variable
    (the only way it is asked below) while no view of it exists; -1 when a view would
    not show in the count (not CPython): slabs are then never reused."""
    box = [bytearray(1)]
    for slab in box:
        alone = _getrefcount(slab)
        view = memoryview(slab)[:1]
        viewed = _getrefcount(slab)
        del view
        if viewed > alone == _getrefcount(slab) and sys.implementation.name == "cpython":
            return alone
    return -1


_UNVIEWED = _references_when_unviewed()

#: Slabs nobody views, shared by the connections of this process (one event loop).
_free: list[bytearray] = []


class ReceiveBuffer:
    """The slabs one connection reads into."""

    __slots__ = ("_lent", "_pinned", "_pos", "_slab")

    def __init__(self) -> None:
        self._slab: bytearray | None = None
        self._pos = 0
        #: The region lent for the read under way; what it filled is sliced from it.
        self._lent: memoryview | None = None
        #: Slabs left behind while something still viewed them.
        self._pinned: list[bytearray] = []

    def lend(self, sizehint: int = -1) -> memoryview:
        """A writable region for the next read (``BufferedProtocol.get_buffer``: the
        region is as large as it is, whatever ``sizehint`` asks)."""
        self._lent = None  # a read that filled nothing (EAGAIN) leaves no view behind
        slab = self._slab  # the attribute and this local: as _references_when_unviewed
        if slab is not None:
            if _getrefcount(slab) == _UNVIEWED:
                self._pos = 0  # nothing of it is in use: start over, cache-warm
                lent = self._lent = memoryview(slab)
                return lent
            if SLAB_SIZE - self._pos >= MIN_LENT:
                lent = self._lent = memoryview(slab)[self._pos :]
                return lent
            self._pinned.append(slab)
        self._slab = slab = self._next_slab()
        self._pos = 0
        lent = self._lent = memoryview(slab)
        return lent

    def filled(self, nbytes: int) -> memoryview:
        """The ``nbytes`` just read into the region lent last (``buffer_updated``)."""
        lent, self._lent = self._lent, None
        self._pos += nbytes
        return lent[:nbytes]  # type: ignore[index]

    def release(self) -> None:
        """The connection is gone: slabs nobody views go back to the process."""
        slab, self._slab, self._lent = self._slab, None, None
        if slab is not None:
            self._pinned.append(slab)
        self._recycle()
        self._pinned = []

    def _next_slab(self) -> bytearray:
        self._recycle()
        if _free:
            return _free.pop()
        return bytearray(SLAB_SIZE)

    def _recycle(self) -> None:
        pinned = self._pinned
        if not pinned:
            return
        still = []
        for slab in pinned:  # the list and this local: as _references_when_unviewed
            if _getrefcount(slab) != _UNVIEWED:
                still.append(slab)
            elif len(_free) < MAX_FREE_SLABS:
                _free.append(slab)
        self._pinned = still
