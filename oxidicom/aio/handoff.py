"""A worker's side of the supervisor's channel: connections in, the worker's load out.

With ``OXIDICOM_WORKERS`` above 1 the supervisor accepts every connection and passes its
descriptor to one worker over a Unix ``SOCK_SEQPACKET`` socket pair (``SCM_RIGHTS``),
chosen by what each reports (``oxidicom/app/dispatch.py``; the messages:
:mod:`oxidicom.aio.channel`). The worker serves it as if it had accepted it (rejecting
its association request when the supervisor found its address over the rate), and
tells the supervisor what it holds (:class:`~oxidicom.aio.channel.Load`): whenever a
connection opens or closes or a slot is taken or freed, and every
:data:`REPORT_INTERVAL` seconds, as transfer rates change without any event. A
connection handed over but not yet taken counts as the worker's too (sent minus taken).
What the other workers hold, per address, the supervisor sends whenever it changes.

When the channel ends (the supervisor is gone, killed or not) the worker stops as on
SIGTERM: no new connection can reach it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from oxidicom.aio.channel import (
    CONNECTION_OVER_RATE,
    HOLDS_ELSEWHERE,
    MAX_MESSAGE,
    ChannelError,
    Load,
    decode_holds_elsewhere,
    encode_load,
)
from oxidicom.scp.services import ScpService

log = logging.getLogger("oxidicom.server")

#: Seconds between two reports when no connection opens or closes.
REPORT_INTERVAL = 1.0

#: Descriptors one message carries at most (the supervisor sends one per message).
_MAX_FDS = 16


class HandoffListener:
    """Serves the connections the supervisor passes over ``channel``."""

    def __init__(
        self,
        channel: socket.socket,
        context: ScpService,
        factory: Callable[[], asyncio.BaseProtocol],
        lost: Callable[[], None],
    ) -> None:
        self.channel = channel
        self.context = context
        self.factory = factory
        #: Called once when the channel ends: the supervisor is gone.
        self.lost = lost
        #: Descriptors taken from the channel so far.
        self.taken = 0
        self._loop = asyncio.get_running_loop()
        self._connecting: set[asyncio.Task[None]] = set()
        #: Connections taken that will never reach the service (closed, or gone while
        #: in flight). The others have reached it, or will (see load).
        self._lost = 0
        self._arrivals_before = context.arrivals
        self._open = True
        self._timer: asyncio.TimerHandle | None = None
        self._preemptible = 0

    def start(self) -> None:
        self.channel.setblocking(False)
        self.context.on_connections_changed = self.report
        self._loop.add_reader(self.channel.fileno(), self._readable)
        self.report()  # the first report says that this worker is ready

    def close(self) -> None:
        """Take no more connections: the supervisor sees the channel end."""
        if self._open:
            self._open = False
            self.context.on_connections_changed = None
            if self._timer is not None:
                self._timer.cancel()
            self._loop.remove_reader(self.channel.fileno())
            self.channel.close()

    def load(self) -> Load:
        context = self.context
        # Several descriptors taken at once become connections one by one, a loop
        # iteration or two later: until then they are open all the same, or the
        # supervisor, seeing this worker emptier than it is, sends it more than its part.
        arrived = context.arrivals - self._arrivals_before
        starting = max(0, self.taken - self._lost - arrived)
        return Load(
            self.taken,
            context.open_connections + starting,
            context.active_associations,
            context.preemptible_now(),
            context.holds_by_host(),
        )

    def report(self) -> None:
        if not self._open:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(REPORT_INTERVAL, self.report)
        load = self.load()
        if load.preemptible != self._preemptible:
            self._preemptible = load.preemptible
            log.debug(
                "reporting %d association(s) here preemptible by a newcomer", load.preemptible
            )
        try:
            self.channel.send(encode_load(load))
        except BlockingIOError:
            pass  # the supervisor is behind: the next report says the same and more
        except OSError:
            self._ended()

    def _readable(self) -> None:
        while self._open:
            try:
                data, fds, _, _ = socket.recv_fds(self.channel, MAX_MESSAGE, _MAX_FDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._ended()
                return
            if not data and not fds:
                self._ended()
                return
            over_rate = data[:1] == CONNECTION_OVER_RATE
            for fd in fds:
                self.taken += 1
                self._serve(socket.socket(fileno=fd), over_rate)
            if not fds and data[:1] == HOLDS_ELSEWHERE:
                try:
                    self.context.holds_elsewhere = decode_holds_elsewhere(data)
                except ChannelError as error:  # a supervisor of another version
                    log.error("the supervisor's table of holds is unreadable: %s", error)

    def _serve(self, sock: socket.socket, over_rate: bool = False) -> None:
        if not self.context.accepting:
            self._lost += 1
            sock.close()
            return
        if over_rate:
            try:
                peer = sock.getpeername()
            except OSError:  # it left while in flight
                self._lost += 1
                sock.close()
                return
            # As the association will name its peer (oxidicom.aio.protocol).
            self.context.over_rate(f"{peer[0]}:{peer[1]}")
        task = self._loop.create_task(self._connect(sock))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, sock: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self.factory, sock)
        except OSError as error:  # the peer left while the descriptor was in flight
            log.debug("connection handed over but gone: %s", error)
            self._lost += 1
            sock.close()

    def _ended(self) -> None:
        if self._open:
            self.close()
            log.warning("the supervisor's channel ended: stopping, no new connections")
            self.lost()
