"""The listening socket and what every association of this process shares."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket

from oxidicom.acceptance import AcceptancePolicy
from oxidicom.aio.context import ConnectionContext
from oxidicom.aio.protocol import AssociationProtocol
from oxidicom.notify.base import Notifier
from oxidicom.process import short_id
from oxidicom.settings import Settings
from oxidicom.storage.writer import Store

log = logging.getLogger("oxidicom.server")


class ServerContext:
    """Settings, policy, storage and counters shared by the associations of one process."""

    def __init__(self, settings: Settings, store: Store, notifier: Notifier) -> None:
        self.settings = settings
        self.store = store
        self.notifier = notifier
        self.policy = AcceptancePolicy(
            ae_title=settings.scp_aet,
            max_pdu_length=settings.scp_max_pdu_length,
            promiscuous=settings.scp_promiscuous,
            uncompressed_only=settings.scp_uncompressed_only,
        )
        self.max_associations = settings.max_associations
        #: Flow control: pause reading above ``high_water`` unconsumed bytes, resume below
        #: ``low_water``. Four maximum-length PDUs keep the pipe full without hoarding.
        self.high_water = max(4 * settings.scp_max_pdu_length, 256 * 1024)
        self.low_water = self.high_water // 4
        self.active_associations = 0
        self.accepting = True
        self.connections: set[AssociationProtocol] = set()
        self._ids = itertools.count(1)
        # Random, not the pid: pids repeat across containers sharing storage and logs.
        self._id_prefix = short_id()

    def next_association_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def acquire_slot(self) -> bool:
        """Count one more association, unless the limit is reached or we are stopping."""
        if not self.accepting or self.active_associations >= self.max_associations:
            return False
        self.active_associations += 1
        return True

    def release_slot(self) -> None:
        self.active_associations -= 1

    def connection_opened(self, protocol: AssociationProtocol) -> None:
        self.connections.add(protocol)

    def connection_closed(self, protocol: AssociationProtocol) -> None:
        self.connections.discard(protocol)


class Receiver:
    """A listening DICOM receiver: start, serve, stop gracefully."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self._server: asyncio.Server | None = None

    @property
    def sockets(self) -> list[socket.socket]:
        return list(self._server.sockets) if self._server is not None else []

    @property
    def port(self) -> int:
        return int(self.sockets[0].getsockname()[1])

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on the configured address, or on an already bound socket."""
        loop = asyncio.get_running_loop()
        settings = self.context.settings

        def factory() -> ConnectionContext:
            return ConnectionContext(AssociationProtocol(self.context))

        if sock is not None:
            self._server = await loop.create_server(factory, sock=sock, backlog=512)
        else:
            self._server = await loop.create_server(
                factory,
                host=settings.listener_address,
                port=settings.listener_port,
                reuse_address=True,
                backlog=512,
            )

    async def stop(self, timeout: float) -> None:
        """Stop accepting; let running associations finish for ``timeout`` s, then abort."""
        context = self.context
        context.accepting = False
        if self._server is not None:
            self._server.close()
        pending = [p.closed for p in context.connections]
        if pending:
            log.info("waiting up to %.0f s for %d connection(s) to finish", timeout, len(pending))
            _, still = await asyncio.wait(pending, timeout=timeout)
            if still:
                log.warning("aborting %d association(s) still running", len(still))
                for protocol in list(context.connections):
                    protocol.abort()
                await asyncio.wait([p.closed for p in context.connections], timeout=5)
        await context.store.drain()
        context.store.close()
