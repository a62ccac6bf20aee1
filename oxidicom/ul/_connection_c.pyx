# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of the byte-crunching half of :class:`oxidicom.ul.connection.Connection`.

:class:`Connection` here is a subclass of the pure-Python one (``ConnectionPy``) that
replaces only the reader and what is sent once per instance: ``receive_data``,
``next_event``, ``_read`` (PDU and PDV framing), ``_whole_pdata`` (one P-DATA-TF of one
PDV in the first chunk), ``_read_pdv_header``, ``_take``, ``_drop``, ``get_timer``,
``buffered``, ``data_to_send``, ``send_message`` and ``_encode_pdata`` (a response in
one PDU of one PDV; anything else is the reference's). The state machine, the control
PDUs and the rest of the output stay the reference's own code, so both twins change
state, raise and answer through the same lines. Each method below is the
pure-Python method with C integers and direct reads of the header bytes; keep them line
for line alike (the differential fuzz target ``pdu_twins_input`` runs both on the same
bytes).

The reader's state lives in C fields of :class:`_ReaderState`, the first base of
:class:`Connection`: the methods here read and write them as struct members, where an
attribute of a Python class costs a type and a dictionary lookup each time (about half
of this reader's instructions before). The reference's methods reach the same fields
through their member descriptors.
"""

from cpython.buffer cimport PyBUF_FULL_RO, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy, strcmp

from oxidicom.ul.connection import _EMPTY as _PY_EMPTY
from oxidicom.ul.connection import ConnectionPy
from oxidicom.ul.constants import AbortReason
from oxidicom.ul.errors import ULProtocolError
from oxidicom.ul.events import DataFragment
from oxidicom.ul.fsm import Evt, State

cdef object _STA1 = State.STA1
cdef object _STA6 = State.STA6
cdef object _EVT17 = Evt.EVT17
cdef object _EVT9 = Evt.EVT9
cdef object _INVALID = AbortReason.INVALID_PDU_PARAMETER_VALUE
cdef object _EMPTY = _PY_EMPTY  # the same object as the reference hands on
cdef Py_ssize_t _HEADER = 6  # PDU_HEADER_LENGTH and PDV_HEADER_LENGTH alike
cdef Py_ssize_t _ONE_PDV = 12  # a P-DATA-TF header and its first PDV item header


cdef inline unsigned long _be32(const unsigned char *p) noexcept nogil:
    return (<unsigned long>p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]


cdef inline void _put_be32(unsigned char *p, unsigned long value) noexcept nogil:
    p[0] = (value >> 24) & 0xFF
    p[1] = (value >> 16) & 0xFF
    p[2] = (value >> 8) & 0xFF
    p[3] = value & 0xFF


cdef inline bint _byte_buffer(Py_buffer *view) noexcept:
    # A one-dimensional run of unsigned bytes: what receive_data makes of its input.
    return (
        view.ndim == 1
        and view.itemsize == 1
        and view.suboffsets == NULL
        and (view.strides == NULL or view.strides[0] == 1)
        and (view.format == NULL or strcmp(view.format, b"B") == 0)
    )


cdef class _ReaderState:
    """The reader's state as C fields (see the module's docstring); no behaviour of its own
    but the reader's methods. ``ConnectionPy.__init__`` sets every field."""

    cdef public object state, _chunks, _events, _control_pdu, _artim_deadline, idle_timeout
    cdef public object _out
    cdef public Py_ssize_t _buffered, _pdu_remaining, _pdv_remaining, _skip
    cdef public Py_ssize_t max_pdu_length, pdu_hard_cap, peer_max_pdu_length
    cdef public int _pdv_context
    cdef public bint _pdv_command, _pdv_last, _eof, _discard, strict
    cdef public double _clock, _idle_mark

    def receive_data(self, data, double now):
        """Feed bytes from the transport; they must not be mutated afterwards."""
        self._clock = now
        if not data or self.state is _STA1 or self._discard:
            return
        self._chunks.append(data if type(data) is memoryview else memoryview(data))
        self._buffered += len(data)

    def get_timer(self):
        """The next time :meth:`handle_timer` must run, or None."""
        if self._artim_deadline is not None:
            return self._artim_deadline
        if self.state is _STA6 and self.idle_timeout is not None:
            return self._idle_mark + self.idle_timeout
        return None

    @property
    def buffered(self):
        """Bytes received but not yet turned into events (for flow control)."""
        return self._buffered

    def data_to_send(self):
        """Everything queued for the peer since the last call, as one write."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def send_message(self, context_id, command, dataset=None):
        """P-DATA request, Evt9: a DIMSE command (and data set), split to the peer's maximum."""
        data = self._encode_pdata(context_id, command, dataset)
        if self.state is _STA6:
            # See ConnectionPy.send_message: Evt9 in Sta6 is DT-1 and stays in Sta6.
            self._out.append(data)
            return
        self._apply(_EVT9, data)

    def _encode_pdata(self, context_id, command, dataset):
        cdef Py_ssize_t peer_max = self.peer_max_pdu_length
        cdef Py_ssize_t limit = 0
        cdef Py_ssize_t size
        cdef unsigned char *p
        if peer_max:
            limit = peer_max - _HEADER if peer_max - _HEADER > 1 else 1
        if dataset is None and type(command) is bytes and (not limit or len(command) <= limit):
            # Every response: one PDU holding one PDV, the last fragment of a command.
            size = len(command)
            if (
                size + _ONE_PDV > 0xFFFFFFFF
                or type(context_id) is not int
                or not 0 <= context_id <= 255
            ):
                return ConnectionPy._encode_pdata(self, context_id, command, dataset)
            data = PyBytes_FromStringAndSize(NULL, _ONE_PDV + size)
            p = <unsigned char *>PyBytes_AS_STRING(data)
            p[0] = 0x04  # P-DATA-TF
            p[1] = 0
            _put_be32(p + 2, size + 6)
            _put_be32(p + 6, size + 2)
            p[10] = <unsigned char>context_id
            p[11] = 3  # a command, its last fragment
            memcpy(p + _ONE_PDV, PyBytes_AS_STRING(command), size)
            return data
        return ConnectionPy._encode_pdata(self, context_id, command, dataset)

    def next_event(self):
        """The next event, or None when more bytes (or a local decision) are needed."""
        events = self._events
        if events:
            return events.popleft()
        try:
            event = self._read()
        except ULProtocolError as error:
            self._protocol_error(error)
            return events.popleft() if events else None
        if event is None and self._eof and self.state is not _STA1:
            self._apply(_EVT17)
            return events.popleft() if events else None
        return event

    def _read(self):
        cdef Py_ssize_t size, remaining, length
        chunks = self._chunks
        while True:
            remaining = self._pdv_remaining
            if remaining:
                # Hot path: hand on PDV data as views of the received chunks.
                if not chunks:
                    return None
                chunk = chunks[0]
                size = len(chunk)
                if size <= remaining:
                    chunks.popleft()
                else:
                    chunks[0] = chunk[remaining:]
                    chunk = chunk[:remaining]
                    size = remaining
                self._buffered -= size
                self._pdu_remaining -= size
                remaining -= size
                self._pdv_remaining = remaining
                if not self._pdu_remaining:
                    self._idle_mark = self._clock
                return DataFragment(
                    self._pdv_context, self._pdv_command, self._pdv_last and not remaining, chunk
                )
            if self._skip:
                if not self._drop(self._skip):
                    return None
                continue
            if self._pdu_remaining:
                if self._pdu_remaining < _HEADER:
                    raise ULProtocolError(_INVALID, "P-DATA-TF ends inside a PDV item header")
                if self._buffered < _HEADER:
                    return None
                event = self._read_pdv_header()
                if event is not None:
                    return event
                continue
            if self._control_pdu is not None:
                pdu_type, length = self._control_pdu
                if self._buffered < length:
                    return None
                self._control_pdu = None
                body = self._take(length) if length else _EMPTY
                self._idle_mark = self._clock
                self._control_pdu_received(pdu_type, body)
                if self._events:
                    return self._events.popleft()
                continue
            state = self.state
            if state is _STA1 or self._buffered < _HEADER:
                return None
            if state is _STA6:
                whole = self._whole_pdata()
                if whole is not None:
                    return whole
            pdu_type, length = _pdu_header(self._take(_HEADER))
            self._pdu_header_received(pdu_type, length)
            if self._events:
                return self._events.popleft()

    def _whole_pdata(self):
        """Fast path: the first chunk holds a whole P-DATA-TF of exactly one PDV.

        That is how DIMSE messages usually arrive (a command, then a data set or a
        piece of one per PDU). Anything else, including every error, is left to the
        general reader, which reads the same bytes the long way.
        """
        cdef Py_buffer view
        cdef const unsigned char *p
        cdef Py_ssize_t size, end
        cdef unsigned long pdu_length, pdv_length
        cdef unsigned char context_id, control
        chunks = self._chunks
        chunk = chunks[0]
        PyObject_GetBuffer(chunk, &view, PyBUF_FULL_RO)
        try:
            if not _byte_buffer(&view):
                return ConnectionPy._whole_pdata(self)
            size = view.len
            if size < _ONE_PDV:
                return None
            p = <const unsigned char *>view.buf
            pdu_length = _be32(p + 2)
            pdv_length = _be32(p + 6)
            if (
                p[0] != 0x04  # P-DATA-TF
                or pdv_length + 4 != pdu_length  # pdu_length - 4, without wrapping
                or pdv_length < 2
                or <unsigned long long>pdu_length + _HEADER > <unsigned long long>size
            ):
                return None
            context_id = p[10]
            control = p[11]
        finally:
            PyBuffer_Release(&view)
        if pdu_length > self.pdu_hard_cap or (
            self.strict and pdu_length > self.max_pdu_length > 0
        ):
            return None
        end = _HEADER + pdu_length
        if end == size:
            chunks.popleft()
        else:
            chunks[0] = chunk[end:]
        self._buffered -= end
        self._idle_mark = self._clock
        return DataFragment(context_id, bool(control & 1), bool(control & 2), chunk[_ONE_PDV:end])

    def _read_pdv_header(self):
        cdef Py_ssize_t pdu_remaining
        cdef unsigned long length
        cdef unsigned char context_id, control
        length, context_id, control = _pdv_header(self._take(_HEADER))
        pdu_remaining = self._pdu_remaining - _HEADER
        self._pdu_remaining = pdu_remaining
        if length < 2 or length - 2 > <unsigned long>pdu_remaining:
            raise ULProtocolError(
                _INVALID,
                f"PDV item length {length} does not fit the {pdu_remaining} bytes left",
            )
        # Bits 2-7 of the message control header are reserved: sent as 0, not tested
        # on receipt (PS3.8 Annex E.2, and 9.3.1 for reserved fields in general).
        command = bool(control & 1)
        last = bool(control & 2)
        self._pdv_context = context_id
        self._pdv_command = command
        self._pdv_last = last
        self._pdv_remaining = length - 2
        if not pdu_remaining:
            self._idle_mark = self._clock
        if length - 2:
            return None
        return DataFragment(context_id, command, last, _EMPTY)

    def _take(self, Py_ssize_t n):
        """Remove and return exactly ``n`` buffered bytes (the caller checked they exist)."""
        cdef Py_ssize_t size, need
        chunks = self._chunks
        self._buffered -= n
        first = chunks[0]
        size = len(first)
        if size > n:
            chunks[0] = first[n:]
            return first[:n]
        if size == n:
            chunks.popleft()
            return first
        parts = bytearray()
        while len(parts) < n:
            chunk = chunks.popleft()
            need = n - len(parts)
            if len(chunk) > need:
                chunks.appendleft(chunk[need:])
                chunk = chunk[:need]
            parts += chunk
        return memoryview(bytes(parts))

    def _drop(self, Py_ssize_t n):
        """Discard up to ``n`` bytes of a PDU being skipped; True once all are gone."""
        cdef Py_ssize_t size
        chunks = self._chunks
        while n and chunks:
            chunk = chunks[0]
            size = len(chunk)
            if size <= n:
                chunks.popleft()
                n -= size
                self._buffered -= size
            else:
                chunks[0] = chunk[n:]
                self._buffered -= n
                n = 0
        self._skip = n
        return n == 0


class Connection(_ReaderState, ConnectionPy):
    __doc__ = ConnectionPy.__doc__


cdef tuple _pdu_header(object six):
    # pdu.PDU_HEADER.unpack: ">BxI" (type, reserved, length) of exactly six bytes.
    cdef Py_buffer view
    cdef const unsigned char *p
    PyObject_GetBuffer(six, &view, PyBUF_FULL_RO)
    try:
        if not _byte_buffer(&view) or view.len != 6:
            from oxidicom.ul.pdu import PDU_HEADER
            return PDU_HEADER.unpack(six)
        p = <const unsigned char *>view.buf
        return (p[0], _be32(p + 2))
    finally:
        PyBuffer_Release(&view)


cdef tuple _pdv_header(object six):
    # pdu.PDV_HEADER.unpack: ">IBB" (item length, context, message control header).
    cdef Py_buffer view
    cdef const unsigned char *p
    PyObject_GetBuffer(six, &view, PyBUF_FULL_RO)
    try:
        if not _byte_buffer(&view) or view.len != 6:
            from oxidicom.ul.pdu import PDV_HEADER
            return PDV_HEADER.unpack(six)
        p = <const unsigned char *>view.buf
        return (_be32(p), p[4], p[5])
    finally:
        PyBuffer_Release(&view)
