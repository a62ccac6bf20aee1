# cython: language_level=3
"""Compiled twin of :meth:`oxidicom.aio.context.ScopedProtocol.buffer_updated` (issue 21),
the first of our calls at every read.

``_ScopeState`` holds the scoped protocol's state in C fields; it is the first base of
``ScopedProtocolC``, so the reference's methods (connection made and lost, EOF, the
other callbacks) reach the same fields through their member descriptors.
``buffer_updated`` is the reference's, line for line, but for two things it keeps: the
wrapped protocol's ``buffer_updated`` as a bound method, made again only when the
wrapped protocol is another object, and the association's context entered and left
through the C calls ``Context.run`` makes. This module imports nothing of the reference
(``bind`` hands over the context variable).
"""

from cpython.contextvars cimport get_value

cdef extern from "Python.h":
    int PyContext_Enter(object context) except -1
    int PyContext_Exit(object context) except -1

cdef object _current = None  # oxidicom.telemetry.logs.CURRENT_ASSOCIATION


def bind(current_association) -> None:
    """Take the context variable that names the association (CURRENT_ASSOCIATION)."""
    global _current
    _current = current_association


cdef class _ScopeState:
    """The scoped protocol's state, in C fields; the first base of ``ScopedProtocolC``.

    ``ScopedProtocolPy.__init__`` sets every public one.
    """

    cdef public object protocol, _context, _scope, get_buffer
    cdef object _updated, _updated_of

    def buffer_updated(self, nbytes):
        """``ScopedProtocolPy.buffer_updated``: a read, counted, then handed on in the
        association's context."""
        scope = self._scope
        protocol = self.protocol
        if protocol is not self._updated_of:
            self._updated, self._updated_of = protocol.buffer_updated, protocol
        if scope is None:
            self._run_updated(nbytes)
            return
        scope.received(nbytes)
        if get_value(_current, None) is scope:
            self._updated(nbytes)  # already inside (a nested callback)
        else:
            self._run_updated(nbytes)

    cdef _run_updated(self, nbytes):
        """``self._context.run(self.protocol.buffer_updated, nbytes)``."""
        context = self._context
        PyContext_Enter(context)
        try:
            self._updated(nbytes)
        finally:
            PyContext_Exit(context)
