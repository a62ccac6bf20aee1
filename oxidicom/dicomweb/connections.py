"""HTTP connections without a running request: bounded in time and in number.

aiohttp keeps an idle connection for an hour and waits for a request's headers as long
as bytes trickle in; each such connection is a descriptor. Here, as for the DIMSE
listener's pending connections (:meth:`oxidicom.scp.services.ScpService._add_pending`):

- a connection is *pending* from its accept until its request's headers are complete
  (the handler runs), and again from the end of a request; a *running* request is
  never closed here (the body's own rules apply: the idle timeout, the rate rule);
- a pending connection must complete its request line and headers within
  ``OXIDICOM_DICOMWEB_HEADER_TIMEOUT`` of its accept, and within
  ``OXIDICOM_DICOMWEB_KEEPALIVE_TIMEOUT`` of its previous response; else it is closed;
- beyond ``OXIDICOM_MAX_PENDING_CONNECTIONS`` pending connections the *oldest* is
  closed: a real client sends its request within milliseconds of connecting, so only
  connections that linger are ever closed.

Closing is an abort (RST): a peer that reads nothing cannot keep the descriptor with a
write buffer that never drains.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web, web_protocol, web_request, web_server

from oxidicom import telemetry
from oxidicom.aio.tls import TLSHandshake
from oxidicom.telemetry.summarized import SummarizedWarning

log = logging.getLogger("oxidicom.dicomweb")

_Handler = web_protocol.RequestHandler


class _Connection:
    """What is kept of one HTTP connection (or of one in its TLS handshake)."""

    __slots__ = ("handler", "peer", "running", "timer", "transport")

    def __init__(
        self, handler: _Handler | TLSHandshake, transport: asyncio.Transport, peer: str
    ) -> None:
        self.handler = handler
        self.transport = transport
        self.peer = peer
        self.running = 0
        self.timer: asyncio.TimerHandle | None = None

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport.abort()


class HttpConnections:
    """Every open HTTP connection of the listener, the pending ones oldest first."""

    def __init__(self, max_pending: int, header_timeout: float, keepalive_timeout: float) -> None:
        self.max_pending = max_pending
        self.header_timeout = header_timeout
        self.keepalive_timeout = keepalive_timeout
        self._open: dict[_Handler, _Connection] = {}
        #: Oldest first; TLS handshakes too (keyed by their TLSHandshake).
        self._pending: dict[_Handler | TLSHandshake, _Connection] = {}
        self._handshakes: dict[TLSHandshake, _Connection] = {}
        self._evictions = SummarizedWarning(
            log,
            "closing HTTP connection from %s: more than"
            f" {max_pending} connections without a running request",
            f"closed %d more HTTP connection(s) without a running request (more than"
            f" {max_pending} open) since the last message",
        )
        self._timeouts = SummarizedWarning(
            log,
            "closing HTTP connection from %s: no complete request headers within %.0f s",
            "closed %d more HTTP connection(s) that sent no complete request headers in time"
            " since the last message",
        )

    @property
    def open(self) -> int:
        return len(self._open)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- from aiohttp --------------------------------------------------------------------

    def opened(self, handler: _Handler, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        connection = _Connection(handler, transport, text)
        self._open[handler] = connection
        self._wait_for_request(connection, self.header_timeout)

    def closed(self, handler: _Handler) -> None:
        connection = self._open.pop(handler, None)
        self._pending.pop(handler, None)
        if connection is not None and connection.timer is not None:
            connection.timer.cancel()
            connection.timer = None

    def handshake_started(self, handshake: TLSHandshake) -> None:
        """An HTTPS connection was accepted: pending from its TCP accept on."""
        assert handshake.transport is not None
        connection = _Connection(handshake, handshake.transport, handshake.peer)
        self._handshakes[handshake] = connection
        self._wait_for_request(connection, self.header_timeout)

    def handshake_ended(self, handshake: TLSHandshake) -> None:
        """Over (failed, or aiohttp takes the connection: opened() follows)."""
        connection = self._handshakes.pop(handshake, None)
        self._pending.pop(handshake, None)
        if connection is not None and connection.timer is not None:
            connection.timer.cancel()
            connection.timer = None

    def request_started(self, handler: _Handler) -> None:
        connection = self._open.get(handler)
        if connection is None:
            return
        connection.running += 1
        self._pending.pop(handler, None)
        if connection.timer is not None:
            connection.timer.cancel()
            connection.timer = None

    def request_ended(self, handler: _Handler) -> None:
        connection = self._open.get(handler)
        if connection is None:
            return
        connection.running -= 1
        if not connection.running and not connection.transport.is_closing():
            self._wait_for_request(connection, self.keepalive_timeout)

    # -- the rules -----------------------------------------------------------------------

    def _wait_for_request(self, connection: _Connection, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        connection.timer = loop.call_later(timeout, self._too_late, connection, timeout)
        self._pending[connection.handler] = connection
        while len(self._pending) > self.max_pending:
            oldest = next(iter(self._pending.values()))
            del self._pending[oldest.handler]
            telemetry.connection_evicted()
            self._evictions.occurred(oldest.peer)
            oldest.close()

    def _too_late(self, connection: _Connection, timeout: float) -> None:
        connection.timer = None
        if self._pending.pop(connection.handler, None) is None:
            return
        self._timeouts.occurred(connection.peer, timeout)
        connection.close()

    def flush_logs(self) -> None:
        self._evictions.flush()
        self._timeouts.flush()


class TrackedServer(web_server.Server):
    """aiohttp's connection factory, telling :class:`HttpConnections` what happens."""

    def __init__(
        self,
        handler: Callable[[web_request.BaseRequest], Awaitable[web.StreamResponse]],
        *,
        connections: HttpConnections,
        **kwargs: Any,
    ) -> None:
        self.tracked = connections

        async def tracked(request: web_request.BaseRequest) -> web.StreamResponse:
            # The headers are complete: the request runs (until its handler returns).
            protocol = request.protocol
            connections.request_started(protocol)
            try:
                return await handler(request)
            finally:
                connections.request_ended(protocol)

        super().__init__(tracked, **kwargs)

    def connection_made(self, handler: _Handler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self.tracked.opened(handler, transport)

    def connection_lost(self, handler: _Handler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self.tracked.closed(handler)


class TrackedSite(web.TCPSite):
    """A TCP site whose HTTPS connections are pending from their TCP accept on.

    With TLS, asyncio would hand a connection to aiohttp only once its handshake is over,
    and until then (60 s) it would be a descriptor nobody counts: a flood of connections
    that never send a ClientHello. As the DICOM TLS listener does, the handshake runs in
    a :class:`~oxidicom.aio.tls.TLSHandshake` counted among the pending connections.
    """

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        connections: HttpConnections,
        backlog: int,
    ) -> None:
        super().__init__(runner, host, port, backlog=backlog, reuse_address=True)
        self.tls = tls
        self.connections = connections

    async def start(self) -> None:
        if self.tls is None:
            await super().start()
            return
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        factory = functools.partial(
            TLSHandshake, self.connections, self.tls, server, self.connections.header_timeout
        )
        self._server = await asyncio.get_running_loop().create_server(
            factory, self._host, self._port, backlog=self._backlog, reuse_address=True
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]


class TrackedRunner(web.AppRunner):
    """An AppRunner whose server is a :class:`TrackedServer`."""

    def __init__(self, app: web.Application, connections: HttpConnections, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.connections = connections

    async def _make_server(self) -> web_server.Server:
        made = await super()._make_server()
        return TrackedServer(
            made.request_handler,
            connections=self.connections,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **made._kwargs,
        )
