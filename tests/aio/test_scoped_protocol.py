"""The scoped protocol, over both twins: each read is counted, then handed to the wrapped
protocol inside the association's own context, and nothing of that context leaks out."""

from __future__ import annotations

import contextvars
from types import SimpleNamespace

import pytest

from oxidicom.aio import context
from oxidicom.telemetry.logs import CURRENT_ASSOCIATION
from tests.implementations import IMPLEMENTATIONS, compiled_module


class _Scope:
    """An association's telemetry, as far as the scoped protocol uses it."""

    def __init__(self) -> None:
        self.received_bytes: list[int] = []

    def received(self, size: int) -> None:
        self.received_bytes.append(size)


class _Inner:
    """The wrapped protocol: records each read and the association current in it."""

    def __init__(self, scope: _Scope | None) -> None:
        self.association = SimpleNamespace(telemetry=scope) if scope is not None else None
        self.reads: list[tuple[int, object]] = []
        self.nested: context.ScopedProtocolPy | None = None

    def connection_made(self, transport: object) -> None:
        pass

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(bytearray(16))

    def buffer_updated(self, nbytes: int) -> None:
        self.reads.append((nbytes, CURRENT_ASSOCIATION.get()))
        if self.nested is not None:  # a callback that reads again, inside the context
            nested, self.nested = self.nested, None
            nested.buffer_updated(nbytes + 1)


def _connected(scoped: type[context.ScopedProtocolPy], inner: _Inner) -> context.ScopedProtocolPy:
    protocol = scoped(inner)  # type: ignore[arg-type]
    protocol.connection_made(object())  # type: ignore[arg-type]
    return protocol


@pytest.fixture(params=IMPLEMENTATIONS)
def scoped(request: pytest.FixtureRequest) -> type[context.ScopedProtocolPy]:
    if request.param == "python":
        return context.ScopedProtocolPy
    module = compiled_module("oxidicom.aio._context_c")
    assert issubclass(context.ScopedProtocol, module._ScopeState), "built, but not selected"
    return context.ScopedProtocol


def test_each_read_is_counted_and_handed_on_in_the_association_s_context(
    scoped: type[context.ScopedProtocolPy],
) -> None:
    scope = _Scope()
    inner = _Inner(scope)
    protocol = _connected(scoped, inner)
    assert protocol.get_buffer(16) is not None
    for size in (5, 7):
        protocol.buffer_updated(size)
    assert inner.reads == [(5, scope), (7, scope)]
    assert scope.received_bytes == [5, 7]
    assert CURRENT_ASSOCIATION.get() is None  # the caller's context is untouched


def test_a_read_from_inside_the_context_does_not_enter_it_again(
    scoped: type[context.ScopedProtocolPy],
) -> None:
    scope = _Scope()
    inner = _Inner(scope)
    protocol = _connected(scoped, inner)
    inner.nested = protocol
    protocol.buffer_updated(3)  # entering the context twice would raise RuntimeError
    assert inner.reads == [(3, scope), (4, scope)]
    assert scope.received_bytes == [3, 4]


def test_before_an_association_reads_run_in_the_connection_s_context(
    scoped: type[context.ScopedProtocolPy],
) -> None:
    inner = _Inner(None)
    protocol = _connected(scoped, inner)
    outer = contextvars.copy_context()
    outer.run(CURRENT_ASSOCIATION.set, "someone else's")  # type: ignore[arg-type]
    outer.run(protocol.buffer_updated, 2)
    assert inner.reads == [(2, None)]  # its own context, not the caller's


def test_a_protocol_wrapped_anew_gets_the_next_reads(
    scoped: type[context.ScopedProtocolPy],
) -> None:
    scope = _Scope()
    first, second = _Inner(scope), _Inner(scope)
    protocol = _connected(scoped, first)
    protocol.buffer_updated(1)
    protocol.protocol = second  # type: ignore[assignment]
    protocol.buffer_updated(2)
    assert first.reads == [(1, scope)] and second.reads == [(2, scope)]


def test_an_error_of_the_wrapped_protocol_leaves_the_context(
    scoped: type[context.ScopedProtocolPy],
) -> None:
    scope = _Scope()
    inner = _Inner(scope)
    protocol = _connected(scoped, inner)

    def fail(nbytes: int) -> None:
        raise ValueError(nbytes)

    inner.buffer_updated = fail  # type: ignore[method-assign]
    protocol.protocol = _Inner(scope)  # a new object: the failing method is taken anew
    protocol.protocol.buffer_updated = fail  # type: ignore[method-assign]
    with pytest.raises(ValueError):
        protocol.buffer_updated(9)
    protocol.protocol = inner
    with pytest.raises(ValueError):
        protocol.buffer_updated(9)  # the context was left: entering it again works
