"""The listening socket and what every association of this process shares."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket

from oxidicom import telemetry
from oxidicom.acceptance import AcceptancePolicy
from oxidicom.aio.context import ConnectionContext
from oxidicom.aio.protocol import AssociationProtocol
from oxidicom.aio.summarized import SummarizedWarning
from oxidicom.aio.tls import server_tls_context
from oxidicom.association import Association
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
        #: Open connections holding no association slot, oldest first (see connection_opened).
        self.max_pending = settings.max_pending_connections
        self._pending: dict[AssociationProtocol, None] = {}
        self._protocols: dict[Association, AssociationProtocol] = {}
        self._evictions = SummarizedWarning(
            log,
            "closing connection from %s: more than"
            f" {self.max_pending} connections without an association",
            f"closed %d more connection(s) without an association (more than {self.max_pending}"
            " open) since the last message",
        )
        self._ids = itertools.count(1)
        # Random, not the pid: pids repeat across containers sharing storage and logs.
        self._id_prefix = short_id()

    def next_association_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def acquire_slot(self, association: Association | None = None) -> bool:
        """Count one more association, unless the limit is reached or we are stopping."""
        if not self.accepting or self.active_associations >= self.max_associations:
            return False
        self.active_associations += 1
        if association is not None and association in self._protocols:
            self._pending.pop(self._protocols[association], None)
        return True

    def release_slot(self, association: Association | None = None) -> None:
        self.active_associations -= 1
        if association is not None and association in self._protocols:
            self._add_pending(self._protocols[association])

    def connection_opened(self, protocol: AssociationProtocol) -> None:
        self.connections.add(protocol)
        if protocol.association is not None:
            self._protocols[protocol.association] = protocol
        self._add_pending(protocol)

    def connection_closed(self, protocol: AssociationProtocol) -> None:
        self.connections.discard(protocol)
        self._pending.pop(protocol, None)
        if protocol.association is not None:
            self._protocols.pop(protocol.association, None)

    @property
    def pending_connections(self) -> int:
        return len(self._pending)

    def _add_pending(self, protocol: AssociationProtocol) -> None:
        """Track a connection without an association; close the oldest beyond the cap.

        Connections that hold no slot (waiting for the A-ASSOCIATE-RQ, or for the peer
        to close after a reject, release or abort) cost a file descriptor each and do no
        work: a flood of them must not exhaust descriptors. Closing the *oldest* keeps
        the door open: a real peer sends its request within milliseconds of connecting,
        so only connections that linger are ever closed.
        """
        if not protocol.is_open:
            return
        self._pending[protocol] = None
        while len(self._pending) > self.max_pending:
            oldest = next(iter(self._pending))
            del self._pending[oldest]
            telemetry.connection_evicted()
            self._evictions.occurred(
                oldest.association.peer if oldest.association is not None else "?"
            )
            oldest.evict()

    def flush_logs(self) -> None:
        """Log what summarized warnings have counted so far (at shutdown)."""
        self._evictions.flush()


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

        tls = server_tls_context(settings)
        # A TLS handshake happens before the protocol sees the connection: bound it by
        # ARTIM too, or idle TLS connections would escape the pending-connection cap.
        handshake = {"ssl_handshake_timeout": settings.artim_timeout} if tls else {}
        if sock is not None:
            self._server = await loop.create_server(
                factory, sock=sock, backlog=512, ssl=tls, **handshake
            )
        else:
            self._server = await loop.create_server(
                factory,
                host=settings.listener_address,
                port=settings.listener_port,
                reuse_address=True,
                backlog=512,
                ssl=tls,
                **handshake,
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
        context.flush_logs()
        await context.store.drain()
        context.store.close()
