"""Each connection's callbacks run in a context of their own, which names its association.

:class:`ScopedProtocol` wraps an :class:`AssociationProtocol`: every asyncio
callback (connect, data, EOF, connection lost) runs inside one
:class:`contextvars.Context` per connection, in which
:data:`oxidicom.telemetry.logs.CURRENT_ASSOCIATION` holds the association's telemetry. Futures
callbacks, tasks and timers created from those callbacks copy that context, so a line
logged by storage or notification code working for the association carries its id,
with nothing passed down. It costs one ``Context.run`` per socket read, nothing per
PDU or fragment. It also counts the bytes read, for telemetry. It is an
``asyncio.BufferedProtocol``: reads land in the wrapped protocol's own buffer.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from oxidicom.support.extensions import load_compiled
from oxidicom.telemetry.logs import CURRENT_ASSOCIATION

if TYPE_CHECKING:
    from oxidicom.aio.protocol import AssociationProtocol
    from oxidicom.telemetry import AssociationTelemetry

_T = TypeVar("_T")


class ScopedProtocolPy(asyncio.BufferedProtocol):
    """The protocol asyncio sees; the work is done by the wrapped one, in its context (the
    pure-Python reference: see :data:`ScopedProtocol` for the class in use)."""

    def __init__(self, protocol: AssociationProtocol) -> None:
        self.protocol = protocol
        self._context = contextvars.copy_context()
        self._scope: AssociationTelemetry | None = None
        # Lending memory needs no context (nothing to log or trace): the wrapped
        # protocol's own method, without a call of ours per read. Transports look the
        # method up once, before connection_made (uvloop) or at each read (asyncio).
        self.get_buffer: Callable[[int], memoryview] = protocol.get_buffer  # type: ignore[method-assign]

    def _run(self, callback: Callable[..., _T], *args: object) -> _T:
        scope = self._scope
        if scope is not None and CURRENT_ASSOCIATION.get() is scope:
            return callback(*args)  # already inside (a nested callback)
        return self._context.run(callback, *args)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._context.run(self._made, transport)

    def _made(self, transport: asyncio.BaseTransport) -> None:
        self.protocol.connection_made(transport)
        association = self.protocol.association
        if association is not None:
            self._scope = association.telemetry
            CURRENT_ASSOCIATION.set(association.telemetry)

    def buffer_updated(self, nbytes: int) -> None:
        # _run, inlined: this runs once per read.
        scope = self._scope
        if scope is None:
            self._context.run(self.protocol.buffer_updated, nbytes)
            return
        scope.received(nbytes)
        if CURRENT_ASSOCIATION.get() is scope:
            self.protocol.buffer_updated(nbytes)  # already inside (a nested callback)
        else:
            self._context.run(self.protocol.buffer_updated, nbytes)

    def data_received(self, data: bytes) -> None:
        """Bytes read before this protocol took over the transport (TLS hand-over)."""
        scope = self._scope
        if scope is not None:
            scope.received(len(data))
        self._run(self.protocol.data_received, data)

    def eof_received(self) -> bool | None:
        return self._run(self.protocol.eof_received)

    def connection_lost(self, exc: Exception | None) -> None:
        self._run(self.protocol.connection_lost, exc)

    def pause_writing(self) -> None:
        # Called synchronously from transport.write, often inside our context already.
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self._run(self.protocol.resume_writing)


# The compiled twin (oxidicom/aio/_context_c.pyx): the state in C fields (``_ScopeState``,
# the first base of ``ScopedProtocolC``) and ``buffer_updated``, once per read.
ScopedProtocol: type[ScopedProtocolPy] = ScopedProtocolPy
_c = load_compiled("oxidicom.aio._context_c")
if _c is not None:
    _c.bind(CURRENT_ASSOCIATION)

    class ScopedProtocolC(_c._ScopeState, ScopedProtocolPy):  # type: ignore[misc,name-defined]
        """:class:`ScopedProtocolPy` with its state in C fields and ``buffer_updated``
        compiled."""

    ScopedProtocol = ScopedProtocolC
