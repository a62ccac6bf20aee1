"""The supervisor's accept loop: each new connection goes to the worker with most room.

The supervisor of several workers (``oxidicom/app/workers.py``) is the only process
that accepts on the listening socket. It passes each accepted connection's descriptor
to one worker over that worker's channel (a Unix ``SOCK_SEQPACKET`` pair, one
descriptor per message) and closes its own copy. The worker chosen
(:func:`dispatch_order`) is one with a free association slot, else one holding an
association the rate rule would preempt (so that a newcomer is never refused by a
worker of fast peers while another holds slow ones), and among those, the one with the
fewest connections for its part of the slots. Connections passed that it had not yet
taken when it last reported (:mod:`oxidicom.aio.handoff`) count as its own. So a
peer's concurrent associations spread over the workers, and a worker refuses or
preempts only when the others are about as full: the receiver's limits, divided among
the workers, still hold as a whole.

A worker gets connections once it has reported (it is serving). The supervisor first
accepts once every worker serves: the first one ready alone holds only its part of the
slots, and would refuse what the others will take. Until then, and whenever no worker
serves (all restarting), the kernel holds the connections in the backlog.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Iterable

from oxidicom.aio.handoff import LOAD, Load
from oxidicom.telemetry.summarized import SummarizedWarning

log = logging.getLogger("oxidicom.workers")

#: Connections accepted per wake-up at most, so the reports are read in between.
_ACCEPT_BATCH = 64
#: After running out of descriptors, wait this long before accepting again.
_DESCRIPTOR_PAUSE = 0.1
#: A failed hand-over that says the worker is gone (else it is only busy or full).
_GONE = (errno.EPIPE, errno.ECONNRESET, errno.ECONNREFUSED, errno.ENOTCONN, errno.EBADF)


class WorkerChannel:
    """The supervisor's end of one worker's channel, and that worker's load."""

    def __init__(self, index: int, slots: int, sock: socket.socket) -> None:
        self.index = index
        #: The worker's association slots: how much it may take.
        self.slots = slots
        self.sock = sock
        #: Descriptors passed to it.
        self.sent = 0
        #: Its last report; None before its first (it is not serving yet).
        self.load: Load | None = None

    @property
    def in_flight(self) -> int:
        """Connections passed to it that it had not taken at its last report."""
        return self.sent - (self.load.taken if self.load is not None else 0)


def dispatch_order(channels: Iterable[WorkerChannel], turn: int = 0) -> list[WorkerChannel]:
    """The serving workers, the one a new connection should go to first.

    Between workers equal in every other way, the one after worker ``turn``'s place in
    the round goes first: one peer's associations one after the other go to each worker
    in turn, so that each worker's part of its request rate is the one used.
    """
    serving = [c for c in channels if c.load is not None]
    count = max((c.index for c in serving), default=0) + 1

    def key(channel: WorkerChannel) -> tuple[int, float, int]:
        load = channel.load
        assert load is not None
        in_flight = channel.in_flight
        if load.associations + in_flight < channel.slots:
            rank = 0  # a free slot
        elif load.preemptible:
            rank = 1  # full, but a newcomer there takes a slow one's slot
        else:
            rank = 2
        return rank, (load.open + in_flight) / channel.slots, (channel.index - turn) % count

    return sorted(serving, key=key)


class Dispatcher:
    """Accepts on ``listener`` and hands each connection to a serving worker."""

    def __init__(self, listener: socket.socket, workers: int) -> None:
        self.listener = listener
        self.channels: dict[int, WorkerChannel] = {}
        #: How many workers must serve before the first accept.
        self.workers = workers
        self._loop = asyncio.get_running_loop()
        self._accepting = False
        self._started = False
        #: Connections handed over so far: whose turn it is between equal workers.
        self._handed = 0
        self._dropped = SummarizedWarning(
            log,
            "no worker could take a connection from %s (each channel full): closed it",
            "closed %d more connection(s) no worker could take since the last message",
        )
        self._closed = False
        listener.setblocking(False)

    @property
    def accepting(self) -> bool:
        """Whether it accepts now (it started, and a worker serves)."""
        return self._accepting

    def attach(self, index: int, slots: int) -> socket.socket:
        """A new channel for worker ``index``: the end to pass to it (close it here once
        the worker has it)."""
        self.detach(index)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        channel = WorkerChannel(index, slots, ours)
        self.channels[index] = channel
        self._loop.add_reader(ours.fileno(), self._read_reports, channel)
        return theirs

    def detach(self, index: int) -> None:
        """Worker ``index`` is gone: what was passed to it and not taken is closed with it."""
        channel = self.channels.pop(index, None)
        if channel is not None:
            self._loop.remove_reader(channel.sock.fileno())
            channel.sock.close()
            self._update_accepting()

    def stop_accepting(self) -> None:
        """Accept no more. The channels stay open: a worker that sees its channel end
        thinks its supervisor gone, and the workers are being told to stop anyway."""
        self._closed = True
        self._update_accepting()

    def close(self) -> None:
        """Accept no more, and close every channel; the listening socket stays the
        caller's."""
        self.stop_accepting()
        self._dropped.flush()
        for index in list(self.channels):
            self.detach(index)

    def _serving(self) -> list[WorkerChannel]:
        return [c for c in self.channels.values() if c.load is not None]

    def _update_accepting(self) -> None:
        serving = len(self._serving())
        self._started = self._started or serving >= self.workers
        wanted = not self._closed and self._started and serving > 0
        if wanted and not self._accepting:
            self._loop.add_reader(self.listener.fileno(), self._accept)
        elif not wanted and self._accepting:
            self._loop.remove_reader(self.listener.fileno())
        self._accepting = wanted

    def _read_reports(self, channel: WorkerChannel) -> None:
        last = None
        while True:
            try:
                data = channel.sock.recv(LOAD.size + 1)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:  # the worker closed its end: stopping, or gone
                self.detach(channel.index)
                return
            if len(data) == LOAD.size:
                last = data
        if last is not None:
            first = channel.load is None
            channel.load = Load(*LOAD.unpack(last))
            if first:
                self._update_accepting()

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("cannot accept: %s; pausing", error.strerror)
                    self._pause()
                # Else the connection was gone before we took it (ECONNABORTED, ...).
                return
            with conn:
                self._hand_over(conn)

    def _hand_over(self, conn: socket.socket) -> None:
        for channel in dispatch_order(self.channels.values(), self._handed):
            try:
                socket.send_fds(channel.sock, [b"c"], [conn.fileno()])
            except OSError as error:
                if error.errno in _GONE:
                    self.detach(channel.index)
                # Else its channel is full (EAGAIN), or too many descriptors are in
                # flight (ETOOMANYREFS): it is not keeping up, try the next.
                continue
            channel.sent += 1
            self._handed += 1
            return
        self._dropped.occurred(_host_of(conn))

    def _pause(self) -> None:
        if self._accepting:
            self._loop.remove_reader(self.listener.fileno())
            self._accepting = False
            self._loop.call_later(_DESCRIPTOR_PAUSE, self._update_accepting)


def _host_of(conn: socket.socket) -> str:
    try:
        peer = conn.getpeername()
    except OSError:  # it left already
        return "?"
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)
