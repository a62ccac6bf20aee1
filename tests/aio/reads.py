"""Reads as a transport makes them, for the shell's tests."""

from __future__ import annotations

from oxidicom.aio.context import ScopedProtocol


def read(protocol: ScopedProtocol, data: bytes) -> None:
    """One read of ``data``, as a transport makes it: into the lent buffer, then reported."""
    lent = protocol.get_buffer(len(data))
    lent[: len(data)] = data
    del lent
    protocol.buffer_updated(len(data))
