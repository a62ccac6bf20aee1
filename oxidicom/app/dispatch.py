"""The supervisor's accept loop: each new connection goes to the worker with most room.

The supervisor of several workers (``oxidicom/app/workers.py``) is the only process
that accepts on the listening socket. It passes each accepted connection's descriptor
to one worker over that worker's channel (a Unix ``SOCK_SEQPACKET`` pair, one
descriptor per message; the messages: :mod:`oxidicom.aio.channel`) and closes its own
copy. The worker chosen (:func:`dispatch_order`) is one with a free association slot,
else one holding an association the rate rule would preempt (so that a newcomer is
never refused by a worker of fast peers while another holds slow ones), else one where
the host-share rule would give the newcomer a slot, and among those, the one with the
fewest connections for its part of the slots. Connections passed that it had not yet
taken when it last reported (:mod:`oxidicom.aio.handoff`) count as its own. So a
peer's concurrent associations spread over the workers, and a worker refuses or
preempts only when the others are about as full: the receiver's limits, divided among
the workers, still hold as a whole.

Two rules are judged here for the whole receiver, not divided: a peer address's request
rate (``OXIDICOM_MAX_ASSOCIATION_RATE``; the supervisor counts each connection, one per
association request in DICOM, and marks those over the rate, which their worker then
rejects), and the host-share rule, for which each worker is told how many slots each
address holds in the others.

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
from collections import Counter
from collections.abc import Iterable, Mapping

from oxidicom.aio.channel import (
    CONNECTION,
    CONNECTION_OVER_RATE,
    MAX_MESSAGE,
    ChannelError,
    Load,
    decode_load,
    encode_holds_elsewhere,
)
from oxidicom.scp.request_rate import HostRequestLimit, RequestRate
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
        #: The table of slots held elsewhere it was last sent (a worker starts with none).
        self.elsewhere_sent: dict[str, int] = {}

    @property
    def in_flight(self) -> int:
        """Connections passed to it that it had not taken at its last report."""
        return self.sent - (self.load.taken if self.load is not None else 0)


def dispatch_order(
    channels: Iterable[WorkerChannel],
    turn: int = 0,
    host: str | None = None,
    holds: Mapping[str, int] | None = None,
) -> list[WorkerChannel]:
    """The serving workers, the one a new connection from ``host`` should go to first.

    ``holds``: the slots each address holds in the whole receiver. When every worker is
    full and none runs an association the rate rule would preempt, a worker holding an
    association of an address that holds at least two slots more than ``host`` goes
    first (there the host-share rule gives the newcomer a slot), of those the one
    holding the address that holds most. Between workers equal in every other way, the
    one after worker ``turn``'s place in the round goes first.
    """
    serving = [c for c in channels if c.load is not None]
    count = max((c.index for c in serving), default=0) + 1
    newcomer = holds.get(host, 0) if holds is not None and host is not None else 0

    def key(channel: WorkerChannel) -> tuple[int, int, float, int]:
        load = channel.load
        assert load is not None
        in_flight = channel.in_flight
        most = 0
        if load.associations + in_flight < channel.slots:
            rank = 0  # a free slot
        elif load.preemptible:
            rank = 1  # full, but a newcomer there takes a slow one's slot
        else:
            if holds is not None:
                most = max((holds.get(h, 0) for h in load.holds), default=0)
            rank = 2 if most >= newcomer + 2 else 3
            if rank == 3:
                most = 0  # no preemption there: only the load tells them apart
        ratio = (load.open + in_flight) / channel.slots
        return rank, -most, ratio, (channel.index - turn) % count

    return sorted(serving, key=key)


class Dispatcher:
    """Accepts on ``listener`` and hands each connection to a serving worker."""

    def __init__(
        self, listener: socket.socket, workers: int, rate: RequestRate | None = None
    ) -> None:
        self.listener = listener
        self.channels: dict[int, WorkerChannel] = {}
        #: How many workers must serve before the first accept.
        self.workers = workers
        #: Connections per address, for the whole receiver (OXIDICOM_MAX_ASSOCIATION_RATE).
        self.request_limit = HostRequestLimit(rate) if rate is not None else None
        #: Slots held per address in the whole receiver, as the workers last reported.
        self.holds: Counter[str] = Counter()
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
            if channel.load is not None and channel.load.holds:
                self._share_holds()

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
                data = channel.sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:  # the worker closed its end: stopping, or gone
                self.detach(channel.index)
                return
            last = data
        if last is None:
            return
        try:
            load = decode_load(last)
        except ChannelError as error:  # a worker of another version
            log.error("worker %d's report is unreadable: %s", channel.index + 1, error)
            return
        before, channel.load = channel.load, load
        if before is None:
            self._update_accepting()
        if before is None or before.holds != load.holds:
            self._share_holds()

    def _share_holds(self) -> None:
        """Count the slots each address holds in the whole receiver, and tell each
        worker (whose table changed) what the others hold."""
        serving = self._serving()
        total: Counter[str] = Counter()
        for channel in serving:
            assert channel.load is not None
            total.update(channel.load.holds)
        self.holds = total
        for channel in serving:
            assert channel.load is not None
            own = channel.load.holds
            elsewhere = {h: n - own.get(h, 0) for h, n in total.items() if n > own.get(h, 0)}
            if elsewhere == channel.elsewhere_sent:
                continue
            try:
                channel.sock.send(encode_holds_elsewhere(elsewhere))
            except OSError:
                continue  # full (it is behind) or gone: the next change sends it again
            channel.elsewhere_sent = elsewhere

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("cannot accept: %s; pausing", error.strerror)
                    self._pause()
                # Else the connection was gone before we took it (ECONNABORTED, ...).
                return
            host = str(address[0]) if isinstance(address, tuple) else str(address)
            limit = self.request_limit
            allowed = limit is None or limit.allow(host, self._loop.time())
            with conn:
                self._hand_over(conn, host, allowed)

    def _hand_over(self, conn: socket.socket, host: str, allowed: bool = True) -> None:
        message = CONNECTION if allowed else CONNECTION_OVER_RATE
        order = dispatch_order(self.channels.values(), self._handed, host, self.holds)
        for channel in order:
            try:
                socket.send_fds(channel.sock, [message], [conn.fileno()])
            except OSError as error:
                if error.errno in _GONE:
                    self.detach(channel.index)
                # Else its channel is full (EAGAIN), or too many descriptors are in
                # flight (ETOOMANYREFS): it is not keeping up, try the next.
                continue
            channel.sent += 1
            self._handed += 1
            return
        self._dropped.occurred(host)

    def _pause(self) -> None:
        if self._accepting:
            self._loop.remove_reader(self.listener.fileno())
            self._accepting = False
            self._loop.call_later(_DESCRIPTOR_PAUSE, self._update_accepting)
