"""The listening socket: accept connections, each in its own protocol; stop gracefully.

What the associations share (slots, policies, storage) is
:class:`~oxidicom.scp.services.ScpService`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable

from oxidicom.aio.context import ScopedProtocol
from oxidicom.aio.handoff import HandoffListener
from oxidicom.aio.protocol import AssociationProtocol
from oxidicom.aio.tls import TLSHandshake, server_tls_context
from oxidicom.scp.services import ScpService

log = logging.getLogger("oxidicom.server")


class Receiver:
    """A listening DICOM receiver: start, serve, stop gracefully."""

    def __init__(self, context: ScpService) -> None:
        self.context = context
        self._server: asyncio.Server | None = None
        self._handoff: HandoffListener | None = None
        self._handoff_port = 0

    @property
    def sockets(self) -> list[socket.socket]:
        return list(self._server.sockets) if self._server is not None else []

    @property
    def port(self) -> int:
        if self._handoff is not None:
            return self._handoff_port
        return int(self.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen on the configured address."""
        settings = self.context.settings
        self._server = await asyncio.get_running_loop().create_server(
            self._factory(),
            host=settings.listener_address,
            port=settings.listener_port,
            reuse_address=True,
            backlog=settings.listen_backlog,
        )

    def start_handoff(self, channel: socket.socket, port: int, lost: Callable[[], None]) -> None:
        """Serve the connections a supervisor accepts on ``port`` and passes over
        ``channel`` (:mod:`oxidicom.aio.handoff`); ``lost`` is called if it goes."""
        self._handoff_port = port
        self._handoff = HandoffListener(channel, self.context, self._factory(), lost)
        self._handoff.start()

    def _factory(self) -> Callable[[], asyncio.BaseProtocol]:
        """What serves one accepted connection."""
        settings = self.context.settings

        def association() -> ScopedProtocol:
            return ScopedProtocol(AssociationProtocol(self.context))

        tls = server_tls_context(settings)
        factory: Callable[[], asyncio.BaseProtocol] = association
        if tls is not None:
            # TCP first, then our own handshake: pending (and evictable) from the accept.
            factory = functools.partial(TLSHandshake, self.context, tls, association)
        return factory

    async def stop(self, timeout: float) -> None:
        """Stop accepting; let running associations finish for ``timeout`` s, then abort."""
        context = self.context
        context.accepting = False
        if self._server is not None:
            self._server.close()
        if self._handoff is not None:
            self._handoff.close()
        for handshake in list(context.handshakes):
            handshake.evict()  # no association yet, and none will be accepted now
        pending = [p.closed for p in context.connections]
        if pending:
            log.info("waiting up to %.0f s for %d connection(s) to finish", timeout, len(pending))
            _, still = await asyncio.wait(pending, timeout=timeout)
            if still:
                log.warning("aborting %d association(s) still running", len(still))
                for protocol in list(context.connections):
                    protocol.abort()
                await asyncio.wait([p.closed for p in context.connections], timeout=5)
        context.flush_logs()
        await context.store.drain()
        context.store.close()
