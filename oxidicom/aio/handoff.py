"""A worker's side of the supervisor's channel: connections in, the worker's load out.

With ``OXIDICOM_WORKERS`` above 1 the supervisor accepts every connection and passes its
descriptor to one worker over a Unix ``SOCK_SEQPACKET`` socket pair (``SCM_RIGHTS``),
chosen by what each reports (``oxidicom/app/dispatch.py``). The worker serves it as if
it had accepted it, and tells the supervisor what it holds (:class:`Load`): whenever a
connection opens or closes, and every :data:`REPORT_INTERVAL` seconds, as transfer
rates change without any event. A connection handed over but not yet taken counts as
the worker's too (sent minus taken).

When the channel ends (the supervisor is gone, killed or not) the worker stops as on
SIGTERM: no new connection can reach it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from typing import NamedTuple

from oxidicom.scp.services import ScpService

log = logging.getLogger("oxidicom.server")

#: Seconds between two reports when no connection opens or closes.
REPORT_INTERVAL = 1.0


class Load(NamedTuple):
    """One report, four unsigned 64-bit integers in native byte order."""

    #: Descriptors taken from the channel so far.
    taken: int
    #: Connections open now (with an association or pending, TLS handshakes too).
    open: int
    #: Association slots held now.
    associations: int
    #: Associations the rate rule would preempt for a newcomer now.
    preemptible: int


LOAD = struct.Struct("=QQQQ")
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
        return Load(
            self.taken,
            context.open_connections,
            context.active_associations,
            context.preemptible_now(),
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
            self.channel.send(LOAD.pack(*load))
        except BlockingIOError:
            pass  # the supervisor is behind: the next report says the same and more
        except OSError:
            self._ended()

    def _readable(self) -> None:
        while self._open:
            try:
                data, fds, _, _ = socket.recv_fds(self.channel, 16, _MAX_FDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._ended()
                return
            if not data and not fds:
                self._ended()
                return
            for fd in fds:
                self.taken += 1
                self._serve(socket.socket(fileno=fd))

    def _serve(self, sock: socket.socket) -> None:
        if not self.context.accepting:
            sock.close()
            return
        task = self._loop.create_task(self._connect(sock))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, sock: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self.factory, sock)
        except OSError as error:  # the peer left while the descriptor was in flight
            log.debug("connection handed over but gone: %s", error)
            sock.close()

    def _ended(self) -> None:
        if self._open:
            self.close()
            log.warning("the supervisor's channel ended: stopping, no new connections")
            self.lost()
