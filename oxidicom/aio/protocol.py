"""The asyncio shell around one connection: socket in, core, socket out.

Everything here is plumbing: the transport reads into a region this protocol lends it
(``get_buffer``, a :class:`~oxidicom.aio.receive_buffer.ReceiveBuffer`), and the bytes
that arrived (``buffer_updated``) go into the sans-IO :class:`Connection` as a view,
uncopied; its events go to the :class:`Association`; what the core
queued for the peer leaves in one ``transport.write`` per batch. The shell also
owns the three things a core cannot: the timer handle, flow control and closing
the socket.

Flow control: reading stops while storage has more than ``high_water`` bytes of this
connection to catch up on, and while the transport cannot write (the peer is not
reading our responses); it resumes only when neither holds. A peer that sends and
never reads therefore costs at most the transport's write buffer plus one read, and
completes no PDU any more: the idle timeout (PS3.8 9.1.5) ends it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, cast

from oxidicom.aio.receive_buffer import ReceiveBuffer
from oxidicom.scp.association import Association
from oxidicom.scp.transfer_rate import GRACE, TransferMeter
from oxidicom.support.extensions import load_compiled
from oxidicom.telemetry.logs import CURRENT_ASSOCIATION
from oxidicom.ul.connection import Connection
from oxidicom.ul.fsm import State

if TYPE_CHECKING:
    from oxidicom.scp.services import ScpService

log = logging.getLogger("oxidicom.protocol")

_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)
#: Read once per read: a global is cheaper than an enum member through its class.
_STA6 = State.STA6


class _BorrowedSocket(socket.socket):
    """A socket object on the transport's descriptor that never closes it.

    Used only while the transport is open (between ``connection_made`` and
    ``connection_lost``), when the descriptor is certainly the connection's.
    """

    def __del__(self) -> None:
        self.detach()


class AssociationProtocol(asyncio.BufferedProtocol):
    """One TCP connection from a DICOM peer (a :class:`~oxidicom.scp.services.Link`)."""

    def __init__(self, server: ScpService) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.conn: Connection | None = None
        self.association: Association | None = None
        #: Waiting for a future of the association (storage): no events are pulled.
        self._blocked = False
        self._blocked_at = 0.0
        #: Storage has more than ``high_water`` bytes to catch up on.
        self._storage_full = False
        #: The transport's write buffer is above its high-water mark.
        self._write_paused = False
        #: Reading is paused (for either reason above).
        self._paused = False
        self._eof_written = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._quickack: socket.socket | None = None
        #: Whether something was sent since the last read (its segment carries the ACK).
        self._answered = False
        #: Whether something was sent since TCP_QUICKACK was last set (see data_received).
        self._sent_since_quickack = True
        self._lost = False
        self.closed: asyncio.Future[None] = self.loop.create_future()
        #: Bytes received lately, for preemption (see ScpService.acquire_slot).
        self.meter = TransferMeter(self.loop.time())
        self._buffer = ReceiveBuffer()
        #: BufferedProtocol.get_buffer: the buffer's own method, one call less per read.
        self.get_buffer = self._buffer.lend  # type: ignore[method-assign]

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        peer = transport.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if _TCP_QUICKACK is not None:
                # See data_received. A socket object of our own: uvloop's stand-in
                # builds a new one for every setsockopt call.
                self._quickack = _BorrowedSocket(sock.family, sock.type, fileno=sock.fileno())
        settings = self.server.settings
        self.conn = Connection(
            max_pdu_length=settings.scp_max_pdu_length,
            strict=settings.scp_strict,
            pdu_hard_cap=settings.pdu_hard_cap,
            artim_timeout=settings.artim_timeout,
            idle_timeout=settings.idle_timeout,
            now=self.loop.time(),
        )
        # A TLS client's certificate (after the handshake), for the access policy.
        certificate = transport.get_extra_info("peercert")
        self.association = Association(self.server, self.conn, peer_text, certificate)
        self.server.connection_opened(self)
        self._arm_timer()

    def get_buffer(self, sizehint: int) -> memoryview:  # replaced in __init__
        return self._buffer.lend(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._buffer.filled(nbytes))

    def data_received(self, data: bytes | memoryview) -> None:
        """Bytes from the transport (a view of our buffer, or bytes nobody mutates)."""
        conn = self.conn
        assert conn is not None
        now = self.loop.time()
        conn.receive_data(data, now)
        self.meter.add(len(data), now)
        self._answered = False
        if not self._blocked:
            self._pump()
        elif not self._storage_full and conn.buffered > self.server.high_water:
            self._storage_full = True
            self._pause()
        if not self._answered and self._sent_since_quickack and self._quickack is not None:
            # Nothing went back to carry the ACK of these bytes: acknowledge them now.
            # A sender that leaves Nagle on holds the rest of a message until then, and
            # Linux would delay the ACK by up to 40 ms. Linux delays the ACK of a read
            # that empties the socket only in its "interactive" (pingpong) mode, which
            # a socket enters when it sends, and leaves by TCP_QUICKACK (or a delayed-ACK
            # timeout): so it is set on the first unanswered read after each thing we
            # send, not on every unanswered read (it also sends an ACK that is due).
            self._sent_since_quickack = False
            try:
                self._quickack.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
            except OSError:
                self._close_quickack()

    def eof_received(self) -> bool:
        # Keep the transport open: the core raises Evt17 only after the bytes before the
        # EOF, and what they ask for is answered first. _flush closes it after that.
        if self.conn is not None:
            self.conn.receive_eof()
            if not self._blocked:
                self._pump()
        # A TLS transport cannot stay half-open (asyncio warns and closes it anyway).
        return self.transport is None or self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._buffer.release()
        self._close_quickack()
        self._cancel_timer()
        conn = self.conn
        if conn is not None and conn.state is not State.STA1:
            conn.receive_eof()
        if not self._blocked:
            self._pump()

    def _close_quickack(self) -> None:
        if self._quickack is not None:
            self._quickack.detach()  # the transport owns the descriptor
            self._quickack = None

    def _finished(self) -> None:
        """The transport is gone and the association has ended: nothing more to do."""
        if not self.closed.done():
            self.closed.set_result(None)
            self.server.connection_closed(self)

    def pause_writing(self) -> None:
        # The peer is not reading our responses: read no more requests until it does,
        # or the responses to them would pile up here without bound.
        self._write_paused = True
        self._pause()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._regulate()

    # -- the pump ------------------------------------------------------------------------

    def _pump(self) -> None:
        conn = self.conn
        association = self.association
        assert conn is not None and association is not None
        handle = association.handle
        next_event = conn.next_event
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
        self._flush()

    def _unblock(self, _: asyncio.Future[None]) -> None:
        self._blocked = False
        now = self.loop.time()
        if self.conn is not None:
            self.conn.local_activity(now)
        if now - self._blocked_at >= GRACE:
            # A long wait on our storage is not the peer's slowness: measure it afresh.
            self.meter.restart(now)
        self._pump()

    def _flush(self) -> None:
        conn = self.conn
        transport = self.transport
        assert conn is not None and transport is not None
        out = conn.data_to_send()
        if out and not transport.is_closing():
            transport.write(out)
            self._answered = self._sent_since_quickack = True
        state = conn.state
        if (
            state is _STA6
            and not (conn.should_close or self._blocked or self._lost or self._paused)
            and not (self._storage_full or self._write_paused)
        ):
            # The common case, once per read: established and reading, nothing to
            # regulate (what follows would change nothing but the timer). The timer's
            # test of _arm_timer, inlined: only an earlier deadline needs a new handle.
            deadline, timer_at = conn.get_timer(), self._timer_at
            if deadline is None or timer_at is None or timer_at > deadline or self._timer is None:
                self._arm_timer()
            return
        self._flush_rest(conn, transport, state)

    def _flush_rest(self, conn: Connection, transport: asyncio.Transport, state: State) -> None:
        """_flush past its common case: closing, half-closing, flow control, the timer."""
        if conn.should_close or (state is State.STA1 and not transport.is_closing()):
            self._close(transport)
        elif state is State.STA13 and self._write_paused and not transport.is_closing():
            # The peer reads nothing of ours, so not our last PDU either: waiting for it
            # to read that and close would only hold the buffer until ARTIM.
            transport.abort()
        elif state is State.STA13 and not self._eof_written:
            self._eof_written = True
            if transport.can_write_eof():
                transport.write_eof()
        if self._blocked:
            if conn.buffered > self.server.high_water:
                self._storage_full = True
        elif conn.buffered <= self.server.low_water:
            self._storage_full = False
        self._regulate()
        if self._lost:
            if not self._blocked and conn.state is State.STA1:
                self._finished()
            return
        self._arm_timer()

    def _close(self, transport: asyncio.Transport) -> None:
        # close() waits for the write buffer to drain, which never happens when the
        # peer does not read: drop what it would not take.
        if self._write_paused:
            transport.abort()
        else:
            transport.close()

    def _regulate(self) -> None:
        """Read only while storage keeps up and the transport can write."""
        if self._write_paused or self._storage_full:
            self._pause()
        else:
            self._resume()

    def _pause(self) -> None:
        if not self._paused and self.transport is not None and not self.transport.is_closing():
            self._paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self._paused and self.transport is not None and not self.transport.is_closing():
            self._paused = False
            self.transport.resume_reading()

    # -- timers --------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        conn = self.conn
        if conn is None:
            return
        deadline = conn.get_timer()
        if deadline is None:
            self._cancel_timer()
            return
        # An earlier handle that fires finds the real deadline and re-arms; only an
        # earlier deadline needs a new handle. This keeps call_at off the hot path.
        if self._timer is not None and self._timer_at is not None and self._timer_at <= deadline:
            return
        self._cancel_timer()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._timer_fired)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _timer_fired(self) -> None:
        self._timer = None
        self._timer_at = None
        conn = self.conn
        if conn is None or conn.state is State.STA1:
            return
        if self._blocked:
            # Storage is busy with this association; the peer is waiting for us.
            conn.local_activity(self.loop.time())
            self._arm_timer()
            return
        established = conn.state is State.STA6
        conn.handle_timer(self.loop.time())
        if established and conn.state is not State.STA6 and self._write_paused:
            # Reading stopped because the peer did not read our responses: that is the
            # peer's inactivity, and why no PDU completed.
            log.warning(
                "%s has not read our responses for %g s: closing the connection",
                self.association.peer if self.association is not None else "?",
                conn.idle_timeout,
            )
        self._pump()

    # -- limits and shutdown -------------------------------------------------------------

    @property
    def peer(self) -> str:
        """``host:port`` of the peer, for the log."""
        return self.association.peer if self.association is not None else "?"

    @property
    def is_open(self) -> bool:
        """True until the transport is closing or gone."""
        return not self._lost and self.transport is not None and not self.transport.is_closing()

    def evict(self) -> None:
        """Close a connection that holds no association (too many of them are open)."""
        if self.transport is not None:
            self._close(self.transport)

    @property
    def preemptible(self) -> bool:
        """Whether this association may be preempted at all: established, and not waiting
        for our own storage (then we are the slow one, not the peer)."""
        conn = self.conn
        return conn is not None and conn.state is State.STA6 and not self._blocked and self.is_open

    def preempt(self, reason: str) -> None:
        """A-ABORT now, so that another peer gets this association's slot.

        Runs on behalf of the other association's request, but logs as this one.
        """
        conn, association = self.conn, self.association
        assert conn is not None and association is not None
        scope = CURRENT_ASSOCIATION.set(association.telemetry)
        try:
            log.warning(
                "association from %s@%s preempted: %s",
                association.calling_ae_title,
                association.peer,
                reason,
            )
            conn.abort(f"preempted: {reason}")
            self._pump()
        finally:
            CURRENT_ASSOCIATION.reset(scope)

    def abort(self) -> None:
        """Send A-ABORT now (shutdown timeout reached)."""
        if self.conn is not None and self.conn.state is not State.STA1:
            self.conn.abort()
            if not self._blocked:
                self._pump()
            elif self.transport is not None:
                self.transport.write(self.conn.data_to_send())
                self._close(self.transport)


# -- the compiled twin ------------------------------------------------------------------
# The class above is the reference. ``_protocol_c.AssociationProtocol`` subclasses it and
# replaces only the per-read path (buffer_updated, data_received, _pump and _flush's
# common case) with compiled code over C fields; everything else is this class's.
# ``AssociationProtocolPy`` keeps the pure-Python class reachable for the tests of both.
AssociationProtocolPy = AssociationProtocol

_c = load_compiled("oxidicom.aio._protocol_c")
if _c is not None:
    AssociationProtocol = _c.AssociationProtocol  # type: ignore[misc]
