"""The sans-IO Upper Layer connection of an association acceptor.

Theory of operation
-------------------

One :class:`Connection` is one transport connection, from the moment it is accepted
to the moment it is closed. It knows PS3.8 and nothing else: no sockets, clocks,
files, threads or asyncio. Its user (the asyncio shell in production, plain calls in
the tests) drives it with four kinds of call, and may call nothing else:

- **input**: :meth:`~Connection.receive_data` (bytes, and the time they arrived),
  :meth:`~Connection.receive_eof`, :meth:`~Connection.handle_timer` (the time, once
  :meth:`~Connection.get_timer` is reached), :meth:`~Connection.local_activity`;
- **events**: :meth:`~Connection.next_event`, repeatedly, until it returns None. Input
  is only parsed here, one event at a time, so a user that stops pulling (storage is
  busy) stops the parsing too, and what is left stays in :attr:`~Connection.buffered`;
- **local primitives**, in answer to events: :meth:`~Connection.accept` or
  :meth:`~Connection.reject` after :class:`AssociationRequested`,
  :meth:`~Connection.send_message` while established, :meth:`~Connection.release`
  after :class:`ReleaseRequested`, :meth:`~Connection.abort` at any time;
- **output**: :meth:`~Connection.data_to_send` (one write's worth of bytes),
  :attr:`~Connection.should_close` and :attr:`~Connection.state`.

The states are PS3.8's, acceptor side only (:mod:`oxidicom.ul.fsm`): Sta2 waiting for
the A-ASSOCIATE-RQ, Sta3 waiting for our accept or reject, Sta6 established, Sta8
waiting for our A-RELEASE-RP, Sta13 waiting for the peer to close, Sta1 closed. Every
change of state goes through :func:`~oxidicom.ul.fsm.transition` with the standard's
event (Evt1..Evt19) and performs the standard's action (AE-5..AA-8): there is no other
way to change state. What may not happen:

- an event that the table has no cell for is a bug of ours, never peer input: every
  byte sequence a peer can send maps to a cell (at worst AA-1 or AA-8, an A-ABORT);
- a malformed or oversized PDU raises :class:`~oxidicom.ul.errors.ULProtocolError`
  inside the reader; the connection turns it into exactly one A-ABORT, one
  :class:`AbortSent` event and Sta13, and reads nothing more;
- a local primitive the current state does not allow (accept twice, send before the
  association is accepted) raises :class:`~oxidicom.ul.fsm.InvalidLocalPrimitive`;
- nothing more is sent after an A-ABORT or an A-ASSOCIATE-RJ (Sta13; see AA-7
  below), and :class:`ConnectionClosed` is the last event.

P-DATA-TF bodies are never buffered whole: PDV data is handed on as views of the
received chunks, split only where the chunks or the PDVs end. Memory per
connection is therefore bounded by what the caller feeds in, whatever the PDU
length; the hard cap on PDU length (:attr:`Connection.pdu_hard_cap`) exists to
refuse peers that are clearly broken, and strict mode refuses anything above the
length we advertised.

Timers (PS3.8 9.1.5): ARTIM runs while waiting for the A-ASSOCIATE-RQ (Sta2) and
while waiting for the peer to close (Sta13). While the association is
established (Sta6), every PDU must complete within ``idle_timeout`` seconds of the
previous one; bytes trickling in do not extend that, so a peer that sends nothing
and a peer that sends one byte a second are dropped alike.

On entering Sta13 the shell half-closes the transport (the peer sees EOF right
after our A-ASSOCIATE-RJ, A-RELEASE-RP or A-ABORT), so action AA-7 ("send
A-ABORT" in Sta13) has no channel left and is reduced to ignoring the PDU.
"""

from __future__ import annotations

import struct
from collections import deque

from oxidicom.support.extensions import load_compiled
from oxidicom.ul import pdu as pdus
from oxidicom.ul.constants import (
    PDU_HEADER_LENGTH,
    PDV_HEADER_LENGTH,
    AbortReason,
    AbortSource,
    PDUType,
)
from oxidicom.ul.errors import ULProtocolError
from oxidicom.ul.events import (
    AbortSent,
    AssociationRequested,
    ConnectionClosed,
    DataFragment,
    Event,
    PeerAborted,
    ReleaseRequested,
    TimedOut,
)
from oxidicom.ul.fsm import Action, Evt, State, transition
from oxidicom.ul.pdu import PDU_HEADER, PDV_HEADER

#: Largest P-DATA-TF accepted in lenient mode (PDU length field, header excluded).
DEFAULT_PDU_HARD_CAP = 16 * 1024 * 1024
#: Largest body of any other PDU: an A-ASSOCIATE-RQ with 128 presentation contexts
#: of 16 transfer syntaxes each needs about 150 KiB.
MAX_CONTROL_PDU_LENGTH = 1024 * 1024
DEFAULT_ARTIM_TIMEOUT = 30.0
DEFAULT_IDLE_TIMEOUT = 60.0

#: A P-DATA-TF header followed by the header of its (first) PDV item.
_ONE_PDV_HEADERS = struct.Struct(">BxIIBB")
_EMPTY = memoryview(b"")
#: Read once per read or response: a global is cheaper than an enum member through its
#: class (about 160 ns against 15 in CPython 3.11).
_STA1 = State.STA1
_STA6 = State.STA6
_P_DATA_TF = int(PDUType.P_DATA_TF)

#: PDU type -> the state machine event its arrival raises (PS3.8 Table 9-2).
_RECEIVE_EVENT = {
    PDUType.A_ASSOCIATE_RQ: Evt.EVT6,
    PDUType.A_ASSOCIATE_AC: Evt.EVT3,
    PDUType.A_ASSOCIATE_RJ: Evt.EVT4,
    PDUType.P_DATA_TF: Evt.EVT10,
    PDUType.A_RELEASE_RQ: Evt.EVT12,
    PDUType.A_RELEASE_RP: Evt.EVT13,
    PDUType.A_ABORT: Evt.EVT16,
}


class Connection:
    """One transport connection, from accept (Evt5) to Sta1."""

    def __init__(
        self,
        *,
        max_pdu_length: int,
        strict: bool = False,
        pdu_hard_cap: int = DEFAULT_PDU_HARD_CAP,
        artim_timeout: float = DEFAULT_ARTIM_TIMEOUT,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        now: float = 0.0,
    ) -> None:
        #: Maximum P-DATA-TF length we advertise (0 would mean unlimited).
        self.max_pdu_length = max_pdu_length
        self.strict = strict
        self.pdu_hard_cap = max(pdu_hard_cap, max_pdu_length)
        self.artim_timeout = artim_timeout
        self.idle_timeout = idle_timeout
        #: The peer's maximum P-DATA-TF length from its A-ASSOCIATE-RQ (0 = unlimited).
        self.peer_max_pdu_length = 0
        self.state = State.STA1
        #: True once the transport must be closed (AA-2, AA-3).
        self.should_close = False

        self._clock = now
        self._artim_deadline: float | None = None
        self._idle_mark = now
        self._chunks: deque[memoryview] = deque()
        self._buffered = 0
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        # Reader position: a pending control PDU body, or inside a P-DATA-TF body.
        self._control_pdu: tuple[int, int] | None = None
        self._pdu_remaining = 0
        self._pdv_remaining = 0
        self._pdv_context = 0
        self._pdv_command = False
        self._pdv_last = False
        self._skip = 0
        self._discard = False
        self._eof = False
        self._apply(Evt.EVT5)

    # -- input ---------------------------------------------------------------------------

    def receive_data(self, data: bytes | memoryview, now: float) -> None:
        """Feed bytes from the transport; they must not be mutated afterwards."""
        self._clock = now
        if not data or self.state is _STA1 or self._discard:
            return
        self._chunks.append(data if type(data) is memoryview else memoryview(data))
        self._buffered += len(data)

    def receive_eof(self) -> None:
        """The transport closed (Evt17), raised once the bytes before it are consumed."""
        self._eof = True

    def local_activity(self, now: float) -> None:
        """The local user was busy for the peer (storage): restart the idle timer."""
        self._clock = now
        self._idle_mark = max(self._idle_mark, now)

    def handle_timer(self, now: float) -> None:
        """Call at (or after) :meth:`get_timer`; expired timers raise their events."""
        self._clock = now
        if self._artim_deadline is not None and now >= self._artim_deadline:
            self._events.append(TimedOut("ARTIM"))
            self._apply(Evt.EVT18)
        elif (
            self.state is State.STA6
            and self.idle_timeout is not None
            and now >= self._idle_mark + self.idle_timeout
        ):
            self._events.append(TimedOut("idle"))
            self._apply(Evt.EVT15, detail=f"no complete PDU for {self.idle_timeout:g} s")

    def get_timer(self) -> float | None:
        """The next time :meth:`handle_timer` must run, or None."""
        if self._artim_deadline is not None:
            return self._artim_deadline
        if self.state is _STA6 and self.idle_timeout is not None:
            return self._idle_mark + self.idle_timeout
        return None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into events (for flow control)."""
        return self._buffered

    # -- output --------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call, as one write."""
        if not self._out:
            return b""
        out = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        return out

    def accept(self, ac: pdus.AssociateAC) -> None:
        """A-ASSOCIATE response (accept), Evt7."""
        self._apply(Evt.EVT7, pdus.encode(ac))

    def reject(self, rj: pdus.AssociateRJ) -> None:
        """A-ASSOCIATE response (reject), Evt8."""
        self._apply(Evt.EVT8, pdus.encode(rj))

    def send_message(self, context_id: int, command: bytes, dataset: bytes | None = None) -> None:
        """P-DATA request, Evt9: a DIMSE command (and data set), split to the peer's maximum."""
        data = self._encode_pdata(context_id, command, dataset)
        if self.state is _STA6:
            # Every response: Evt9 in Sta6 is DT-1 and stays in Sta6 (PS3.8 Table 9-10),
            # which is _apply's work without its walk through the actions.
            self._out.append(data)
            return
        self._apply(Evt.EVT9, data)

    def release(self) -> None:
        """A-RELEASE response, Evt14."""
        self._apply(Evt.EVT14, pdus.encode(pdus.ReleaseRP()))

    def abort(self, detail: str = "") -> None:
        """A-ABORT request from the local user, Evt15; ``detail`` says why (for the log)."""
        if self.state is not State.STA1:
            self._apply(Evt.EVT15, detail=detail)

    # -- events --------------------------------------------------------------------------

    def next_event(self) -> Event | None:
        """The next event, or None when more bytes (or a local decision) are needed."""
        if self._events:
            return self._events.popleft()
        try:
            event = self._read()
        except ULProtocolError as error:
            self._protocol_error(error)
            return self._events.popleft() if self._events else None
        if event is None and self._eof and self.state is not State.STA1:
            self._apply(Evt.EVT17)
            return self._events.popleft() if self._events else None
        return event

    def _read(self) -> Event | None:
        while True:
            if self._pdv_remaining:
                # Hot path: hand on PDV data as views of the received chunks.
                if not self._chunks:
                    return None
                chunk = self._chunks[0]
                size = len(chunk)
                remaining = self._pdv_remaining
                if size <= remaining:
                    self._chunks.popleft()
                else:
                    self._chunks[0] = chunk[remaining:]
                    chunk = chunk[:remaining]
                    size = remaining
                self._buffered -= size
                self._pdu_remaining -= size
                self._pdv_remaining = remaining = remaining - size
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
                if self._pdu_remaining < PDV_HEADER_LENGTH:
                    raise ULProtocolError(
                        AbortReason.INVALID_PDU_PARAMETER_VALUE,
                        "P-DATA-TF ends inside a PDV item header",
                    )
                if self._buffered < PDV_HEADER_LENGTH:
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
            if self.state is State.STA1 or self._buffered < PDU_HEADER_LENGTH:
                return None
            if self.state is State.STA6:
                whole = self._whole_pdata()
                if whole is not None:
                    return whole
            pdu_type, length = PDU_HEADER.unpack(self._take(PDU_HEADER_LENGTH))
            self._pdu_header_received(pdu_type, length)
            if self._events:
                return self._events.popleft()

    def _whole_pdata(self) -> DataFragment | None:
        """Fast path: the first chunk holds a whole P-DATA-TF of exactly one PDV.

        That is how DIMSE messages usually arrive (a command, then a data set or a
        piece of one per PDU). Anything else, including every error, is left to the
        general reader, which reads the same bytes the long way.
        """
        chunk = self._chunks[0]
        if len(chunk) < _ONE_PDV_HEADERS.size:
            return None
        pdu_type, pdu_length, pdv_length, context_id, control = _ONE_PDV_HEADERS.unpack_from(chunk)
        end = PDU_HEADER_LENGTH + pdu_length
        if (
            pdu_type != PDUType.P_DATA_TF
            or pdv_length != pdu_length - 4
            or pdv_length < 2
            or end > len(chunk)
            or pdu_length > self.pdu_hard_cap
            or (self.strict and pdu_length > self.max_pdu_length > 0)
        ):
            return None
        if end == len(chunk):
            self._chunks.popleft()
        else:
            self._chunks[0] = chunk[end:]
        self._buffered -= end
        self._idle_mark = self._clock
        return DataFragment(
            context_id, bool(control & 1), bool(control & 2), chunk[_ONE_PDV_HEADERS.size : end]
        )

    def _pdu_header_received(self, pdu_type: int, length: int) -> None:
        event = _RECEIVE_EVENT.get(pdu_type)  # type: ignore[call-overload]
        if event is None:
            raise ULProtocolError(AbortReason.UNRECOGNIZED_PDU, f"unknown PDU type {pdu_type:#04x}")
        if event is not Evt.EVT10:
            if length > MAX_CONTROL_PDU_LENGTH:
                raise ULProtocolError(
                    AbortReason.INVALID_PDU_PARAMETER_VALUE,
                    f"PDU type {pdu_type:#04x} of {length} bytes exceeds {MAX_CONTROL_PDU_LENGTH}",
                )
            self._control_pdu = (pdu_type, length)
            return
        if self.strict and length > self.max_pdu_length > 0:
            raise ULProtocolError(
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
                f"P-DATA-TF of {length} bytes exceeds our maximum of {self.max_pdu_length}"
                " (strict mode)",
            )
        if length > self.pdu_hard_cap:
            raise ULProtocolError(
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
                f"P-DATA-TF of {length} bytes exceeds the hard cap of {self.pdu_hard_cap}",
            )
        if length < PDV_HEADER_LENGTH:
            raise ULProtocolError(
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
                f"P-DATA-TF of {length} bytes cannot hold a PDV item",
            )
        if self.state is State.STA6:
            self._pdu_remaining = length
            return
        # Outside Sta6 a P-DATA-TF is ignored (Sta13) or aborts; its body is skipped.
        self._skip = length
        self._apply(event, AbortReason.UNEXPECTED_PDU, "P-DATA-TF outside an association")

    def _read_pdv_header(self) -> Event | None:
        length, context_id, control = PDV_HEADER.unpack(self._take(PDV_HEADER_LENGTH))
        self._pdu_remaining -= PDV_HEADER_LENGTH
        if length < 2 or length - 2 > self._pdu_remaining:
            raise ULProtocolError(
                AbortReason.INVALID_PDU_PARAMETER_VALUE,
                f"PDV item length {length} does not fit the {self._pdu_remaining} bytes left",
            )
        # Bits 2-7 of the message control header are reserved: sent as 0, not tested
        # on receipt (PS3.8 Annex E.2, and 9.3.1 for reserved fields in general).
        self._pdv_context = context_id
        self._pdv_command = bool(control & 1)
        self._pdv_last = bool(control & 2)
        self._pdv_remaining = length - 2
        if not self._pdu_remaining:
            self._idle_mark = self._clock
        if self._pdv_remaining:
            return None
        return DataFragment(context_id, self._pdv_command, self._pdv_last, _EMPTY)

    def _control_pdu_received(self, pdu_type: int, body: memoryview) -> None:
        parsed = pdus.parse_body(pdu_type, body)
        event = _RECEIVE_EVENT[pdu_type]  # type: ignore[index]
        match parsed:
            case pdus.AssociateRQ() if self.state is State.STA2:
                self._apply(event, parsed)
            case pdus.Abort(source=source, reason=reason):
                self._apply(event, PeerAborted(source, reason))
            case _:
                name = PDUType(pdu_type).name.replace("_", "-", 1).replace("_", "-")
                self._apply(
                    event, AbortReason.UNEXPECTED_PDU, f"unexpected {name} in {self.state.name}"
                )

    # -- state machine -------------------------------------------------------------------

    def _apply(self, event: Evt, payload: object = None, detail: str = "") -> None:
        action, next_state = transition(self.state, event)
        previous = self.state
        self.state = next_state
        match action:
            case Action.AE_5:
                self._start_artim()
            case Action.AE_6:
                self._artim_deadline = None
                request: pdus.AssociateRQ = payload  # type: ignore[assignment]
                self.peer_max_pdu_length = request.user_information.maximum_length or 0
                self._events.append(AssociationRequested(request))
            case Action.AE_7:
                self._out.append(payload)  # type: ignore[arg-type]
                self._idle_mark = self._clock
            case Action.AE_8 | Action.AR_4:
                self._out.append(payload)  # type: ignore[arg-type]
                self._start_artim()
            case Action.DT_1 | Action.AR_7:
                self._out.append(payload)  # type: ignore[arg-type]
            case Action.AR_2:
                self._events.append(ReleaseRequested())
            case Action.AA_1:
                # PS3.8 Table 9-7: AA-1 sends a service-user abort, whose reason is not
                # significant. It answers a local A-ABORT request and any PDU but the
                # A-ASSOCIATE-RQ arriving in Sta2.
                self._send_abort(
                    AbortSource.SERVICE_USER,
                    AbortReason.NOT_SPECIFIED,
                    detail or _describe(event, previous),
                )
            case Action.AA_8:
                reason = payload if isinstance(payload, AbortReason) else AbortReason.NOT_SPECIFIED
                self._send_abort(
                    AbortSource.SERVICE_PROVIDER, reason, detail or _describe(event, previous)
                )
            case Action.AA_2 | Action.AA_3:
                self._artim_deadline = None
                self.should_close = True
                if isinstance(payload, PeerAborted):
                    self._events.append(payload)
                self._events.append(ConnectionClosed())
            case Action.AA_4 | Action.AA_5 | Action.AR_5:
                self._artim_deadline = None
                self._events.append(ConnectionClosed())
            case Action.AA_6 | Action.AA_7:
                pass  # ignored; for AA-7 see the module docstring
        if next_state is State.STA1:
            self._discard = True
            self._chunks.clear()
            self._buffered = 0
        elif next_state is State.STA13 and self._pdu_remaining:
            # Aborted (locally, or by a timer) inside a P-DATA-TF: in Sta13 P-DATA is
            # ignored (AA-6), so the rest of this PDU is dropped, not reported.
            self._skip += self._pdu_remaining
            self._pdu_remaining = self._pdv_remaining = 0

    def _protocol_error(self, error: ULProtocolError) -> None:
        """Evt19: the peer sent an unrecognized or invalid PDU."""
        self._discard = True  # framing is lost: nothing after this can be trusted
        self._chunks.clear()
        self._buffered = 0
        self._pdu_remaining = self._pdv_remaining = self._skip = 0
        self._control_pdu = None
        if self.state is not State.STA1:
            self._apply(Evt.EVT19, error.reason, error.detail)

    def _send_abort(self, source: AbortSource, reason: AbortReason, detail: str) -> None:
        self._out.append(pdus.encode(pdus.Abort(source, reason)))
        self._events.append(AbortSent(source, reason, detail))
        self._start_artim()

    def _start_artim(self) -> None:
        self._artim_deadline = self._clock + self.artim_timeout

    # -- buffers -------------------------------------------------------------------------

    def _take(self, n: int) -> memoryview:
        """Remove and return exactly ``n`` buffered bytes (the caller checked they exist)."""
        self._buffered -= n
        first = self._chunks[0]
        if len(first) > n:
            self._chunks[0] = first[n:]
            return first[:n]
        if len(first) == n:
            self._chunks.popleft()
            return first
        parts = bytearray()
        while len(parts) < n:
            chunk = self._chunks.popleft()
            need = n - len(parts)
            if len(chunk) > need:
                self._chunks.appendleft(chunk[need:])
                chunk = chunk[:need]
            parts += chunk
        return memoryview(bytes(parts))

    def _drop(self, n: int) -> bool:
        """Discard up to ``n`` bytes of a PDU being skipped; True once all are gone."""
        while n and self._chunks:
            chunk = self._chunks[0]
            if len(chunk) <= n:
                self._chunks.popleft()
                n -= len(chunk)
                self._buffered -= len(chunk)
            else:
                self._chunks[0] = chunk[n:]
                self._buffered -= n
                n = 0
        self._skip = n
        return n == 0

    def _encode_pdata(self, context_id: int, command: bytes, dataset: bytes | None) -> bytes:
        # PS3.8 D.1: the peer's maximum bounds the PDU length field; a PDV item adds 6.
        # A peer maximum too small to carry one byte is nonsense; send 1-byte PDVs then.
        peer_max = self.peer_max_pdu_length
        limit = max(peer_max - PDV_HEADER_LENGTH, 1) if peer_max else 0
        if dataset is None and (not limit or len(command) <= limit):
            # Every response: one PDU holding one PDV, the last fragment of a command.
            size = len(command)
            return _ONE_PDV_HEADERS.pack(_P_DATA_TF, size + 6, size + 2, context_id, 3) + command
        parts: list[bytes] = []
        for is_command, data in ((True, command), (False, dataset)):
            if data is None:
                continue
            step = limit if limit > 0 else max(len(data), 1)
            offset = 0
            while True:
                piece = data[offset : offset + step]
                offset += step
                last = offset >= len(data)
                header = pdus.encode_pdv_header(context_id, is_command, last, len(piece))
                parts.append(PDU_HEADER.pack(PDUType.P_DATA_TF, len(piece) + PDV_HEADER_LENGTH))
                parts.append(header)
                parts.append(piece)
                if last:
                    break
        return b"".join(parts)


def _describe(event: Evt, state: State) -> str:
    return f"{event.name} is not allowed in {state.name}"


# -- the compiled twin ------------------------------------------------------------------
# The class above is the reference. ``_connection_c.Connection`` subclasses it and
# replaces only the reader (PDU/PDV framing out of the buffered chunks, receive_data,
# get_timer) and the sending of a response (send_message, data_to_send) with compiled
# code that gives the same events, bytes and errors; the state machine stays this
# module's. The reader's state is held in C fields there, which this class's
# methods reach through member descriptors (so no attribute of the reader may be given
# a value of another type: an int stays an int, a bool a bool, a time a float).
# ``ConnectionPy`` keeps the pure-Python class reachable for the tests of both.
ConnectionPy = Connection

_c = load_compiled("oxidicom.ul._connection_c")
if _c is not None:
    Connection = _c.Connection  # type: ignore[misc]
