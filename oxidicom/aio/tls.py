"""The TLS context of a DICOM TLS listener (PS3.15 Annex B.1, secure transport connection).

Built once at start from the settings. PS3.15 B.1 and its BCP 195 profiles ask for TLS
1.2 or later; Python's default server context already refuses older versions and weak
ciphers. With a client CA, the peer must present a certificate that CA signed (mutual
TLS); without one, any client may connect and only the server is authenticated.
Which AE titles a client certificate may use (``OXIDICOM_TLS_CLIENT_AETS``) is decided
per association from the verified certificate (``peercert``), in :mod:`oxidicom.scp.access`.

The listener accepts plain TCP and runs the handshake itself (:class:`TLSHandshake`,
``loop.start_tls``), rather than leaving it to ``create_server(ssl=...)``: that way a
connection is one of the pending connections from its TCP accept on, and a flood of
connections that never send a ClientHello evicts itself like any other idle flood,
instead of holding a descriptor each until the handshake timeout.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from oxidicom.app.settings import Settings
    from oxidicom.scp.services import ScpService

log = logging.getLogger("oxidicom.tls")

_T = TypeVar("_T")


class TLSSetupError(Exception):
    """The TLS files cannot be used: one line for the operator."""


def server_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The listener's TLS context, or None for plain TCP."""
    if settings.tls_certificate is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_certificate, settings.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise TLSSetupError(
            f"cannot use OXIDICOM_TLS_CERTIFICATE={settings.tls_certificate!r}"
            f" / OXIDICOM_TLS_KEY={settings.tls_key!r}: {_reason(error)}"
        ) from error
    if settings.tls_client_ca is not None:
        try:
            context.load_verify_locations(cafile=settings.tls_client_ca)
        except (OSError, ssl.SSLError) as error:
            raise TLSSetupError(
                f"cannot use OXIDICOM_TLS_CLIENT_CA={settings.tls_client_ca!r}: {_reason(error)}"
            ) from error
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def _reason(error: OSError | ssl.SSLError) -> str:
    return str(getattr(error, "reason", None) or error.strerror or error)


class HandshakeOwner(Protocol):
    """Who counts a listener's connections in their TLS handshake (as pending ones)."""

    def handshake_started(self, handshake: TLSHandshake) -> None: ...

    def handshake_ended(self, handshake: TLSHandshake) -> None: ...


class TLSHandshake(asyncio.Protocol):
    """A TLS listener's TCP connection until its handshake is over.

    Counted among the server's pending connections (evicted oldest first beyond
    ``OXIDICOM_MAX_PENDING_CONNECTIONS``) and bounded by ARTIM; once the handshake
    completes, the connection is handed to the protocol ``app`` makes, as
    ``create_server(ssl=...)`` would have handed it.
    """

    def __init__(
        self,
        server: ScpService | HandshakeOwner,
        context: ssl.SSLContext,
        app: Callable[[], asyncio.Protocol],
        timeout: float | None = None,
    ) -> None:
        self.server = server
        self._context = context
        self._app = app
        #: The handshake's deadline: ARTIM for DICOM, the header timeout for HTTP.
        self._timeout = timeout if timeout is not None else server.settings.artim_timeout  # type: ignore[union-attr]
        self.transport: asyncio.Transport | None = None
        self.peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.server.handshake_started(self)
        app = _HandOver(self._app())
        loop = asyncio.get_running_loop()
        handshake = loop.start_tls(
            self.transport,
            app,
            self._context,
            server_side=True,
            ssl_handshake_timeout=self._timeout,
        )
        run_without_task(handshake, lambda secure, error: self._handshake_over(secure, error, app))

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def evict(self) -> None:
        """Close the connection (too many are pending, or we are stopping)."""
        if self.transport is not None:
            self.transport.abort()

    def _handshake_over(
        self,
        secure: asyncio.Transport | None,
        error: BaseException | None,
        app: _HandOver,
    ) -> None:
        self.server.handshake_ended(self)
        if isinstance(error, OSError):  # refused, timed out, reset, evicted
            log.debug("TLS handshake with %s failed: %s", self.peer, error)
            return
        if error is not None:
            log.error("TLS handshake with %s failed", self.peer, exc_info=error)
            return
        if secure is None or secure.is_closing():
            # Closed during the handshake (evicted, or the peer left): start_tls returns
            # the closed transport rather than raising.
            log.debug("TLS handshake with %s: the connection ended", self.peer)
            return
        app.hand_over(secure)


class _HandOver(asyncio.Protocol):
    """The TLS transport's protocol until the connection's own protocol takes it over.

    Python 3.11's TLS protocol hands the first decrypted data (an A-ASSOCIATE-RQ sent
    with the client's last handshake message) to its protocol in the same call that
    completes the handshake, before ``start_tls`` returns: it is kept here and given
    to the real protocol right after its ``connection_made`` (at most one read).
    """

    def __init__(self, protocol: asyncio.Protocol) -> None:
        self._protocol = protocol
        self._early: list[bytes] = []
        self._eof = False

    def hand_over(self, transport: asyncio.Transport) -> None:
        protocol = self._protocol
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        for data in self._early:
            protocol.data_received(data)
        self._early.clear()
        if self._eof:
            protocol.eof_received()

    def data_received(self, data: bytes) -> None:
        self._early.append(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        pass  # before the hand-over: nothing was made, nothing to undo


def run_without_task(
    coroutine: Coroutine[Any, Any, _T],
    finished: Callable[[_T | None, BaseException | None], None],
) -> None:
    """Run ``coroutine`` now until it first waits, then again in the very callback of
    each future it waits for; ``finished`` gets its result or its exception at once.

    A task would not do for ``loop.start_tls``: started as a task it runs on a later
    iteration of the loop, but uvloop reads from a new connection right after
    ``connection_made`` (a ``pause_reading`` there is undone), so the ClientHello would
    reach the plain protocol and be lost. Run now, start_tls puts the TLS protocol in
    place first. (Python 3.12's eager tasks would do; 3.11 has none.)
    """
    loop = asyncio.get_running_loop()

    def step() -> None:
        try:
            waiting = coroutine.send(None)
        except StopIteration as done:
            finished(cast(_T, done.value), None)
            return
        except (Exception, asyncio.CancelledError) as error:
            finished(None, error)
            return
        if waiting is None:  # a bare yield, as in asyncio.sleep(0)
            loop.call_soon(step)
        else:
            waiting.add_done_callback(lambda _: step())

    step()
