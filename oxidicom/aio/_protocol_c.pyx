# cython: language_level=3
"""Compiled twin of the per-read path of :class:`oxidicom.aio.protocol.AssociationProtocol`.

:class:`AssociationProtocol` here is a subclass of the pure-Python one
(``AssociationProtocolPy``) that replaces only what runs at every read: ``buffer_updated``,
``data_received``, ``_pump`` and the common case of ``_flush`` (established, reading,
nothing to regulate). Closing, flow control, timers and every other callback stay the
reference's own code (``_flush`` hands anything off its common case to ``_flush_rest``),
so both twins change state and answer through the same lines. Each method below is the
pure-Python method line for line; keep them alike. CI runs the whole test suite once with
this twin and once with the reference.

The shell's state lives in C fields of :class:`_ShellState`, the first base of
:class:`AssociationProtocol`: the methods here read and write them as struct members, where
an attribute of a Python class costs a type and a dictionary lookup each time. The
reference's methods reach the same fields through their member descriptors, so none of
them may be given a value of another type (a flag stays a bool, a time a float).
"""

import socket

from oxidicom.aio.protocol import _STA6, _TCP_QUICKACK, AssociationProtocolPy

cdef object _STA6_ = _STA6
cdef object _QUICKACK = _TCP_QUICKACK
cdef int _IPPROTO_TCP = socket.IPPROTO_TCP


cdef class _ShellState:
    """The shell's state as C fields (see the module's docstring); its behaviour is the
    per-read path. ``AssociationProtocolPy.__init__`` sets every field."""

    cdef public object server, loop, transport, conn, association, meter, _buffer
    cdef public object _quickack, _timer, _timer_at
    cdef public bint _blocked, _storage_full, _write_paused, _paused, _eof_written
    cdef public bint _answered, _sent_since_quickack, _lost
    cdef public double _blocked_at
    # The association's handle and the connection's next_event, as bound methods, and
    # the two they were taken from: made once, not at every read (_pump_c).
    cdef object _handle, _next_event, _handle_of, _next_event_of

    def buffer_updated(self, Py_ssize_t nbytes):
        self._received(self._buffer.filled(nbytes))

    def data_received(self, data):
        """Bytes from the transport (a view of our buffer, or bytes nobody mutates)."""
        self._received(data)

    cdef _received(self, data):
        conn = self.conn
        assert conn is not None
        now = self.loop.time()
        conn.receive_data(data, now)
        self.meter.add(len(data), now)
        self._answered = False
        if not self._blocked:
            self._pump_c()
        elif not self._storage_full and conn.buffered > self.server.high_water:
            self._storage_full = True
            self._pause()
        if not self._answered and self._sent_since_quickack and self._quickack is not None:
            # See AssociationProtocolPy.data_received.
            self._sent_since_quickack = False
            try:
                self._quickack.setsockopt(_IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                self._close_quickack()

    def _pump(self):
        self._pump_c()

    def _flush(self):
        self._flush_c()

    # The per-read path calls these two directly, as C functions: the methods above are
    # for the reference's callers (_unblock, eof_received, the timer...).
    cdef _pump_c(self):
        conn = self.conn
        association = self.association
        assert conn is not None and association is not None
        if association is not self._handle_of or conn is not self._next_event_of:
            self._handle, self._handle_of = association.handle, association
            self._next_event, self._next_event_of = conn.next_event, conn
        handle = self._handle
        next_event = self._next_event
        while True:
            event = next_event()
            if event is None:
                break
            wait = handle(event)
            if wait is not None and not wait.done():
                self._blocked = True
                self._blocked_at = self.loop.time()
                wait.add_done_callback(self._unblock)
                break
        self._flush_c()

    cdef _flush_c(self):
        conn = self.conn
        transport = self.transport
        assert conn is not None and transport is not None
        out = conn.data_to_send()
        if out and not transport.is_closing():
            transport.write(out)
            self._answered = self._sent_since_quickack = True
        state = conn.state
        if (
            state is _STA6_
            and not (conn.should_close or self._blocked or self._lost or self._paused)
            and not (self._storage_full or self._write_paused)
        ):
            # See AssociationProtocolPy._flush: the common case, once per read.
            deadline, timer_at = conn.get_timer(), self._timer_at
            if deadline is None or timer_at is None or timer_at > deadline or self._timer is None:
                self._arm_timer()
            return
        self._flush_rest(conn, transport, state)


class AssociationProtocol(_ShellState, AssociationProtocolPy):
    __doc__ = AssociationProtocolPy.__doc__
