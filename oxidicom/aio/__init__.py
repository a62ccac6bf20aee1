"""The thin asyncio shell: the listening socket, one protocol per connection, TLS.

Bytes from the socket go into the sans-IO :class:`~oxidicom.ul.connection.Connection`,
its events to the :class:`~oxidicom.scp.association.Association`; what the core queued
goes back out. Timers, flow control and closing the socket live here, nothing else.
"""

from typing import TYPE_CHECKING

from oxidicom.support.lazy import lazy_exports

if TYPE_CHECKING:
    from oxidicom.aio.context import ScopedProtocol
    from oxidicom.aio.protocol import AssociationProtocol
    from oxidicom.aio.server import Receiver
    from oxidicom.aio.tls import TLSHandshake, TLSSetupError, server_tls_context

# Imported on first use (oxidicom.support.lazy).
_WHERE = {
    "ScopedProtocol": "oxidicom.aio.context",
    "AssociationProtocol": "oxidicom.aio.protocol",
    "Receiver": "oxidicom.aio.server",
    "TLSHandshake": "oxidicom.aio.tls",
    "TLSSetupError": "oxidicom.aio.tls",
    "server_tls_context": "oxidicom.aio.tls",
}
__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = [
    "AssociationProtocol",
    "Receiver",
    "ScopedProtocol",
    "TLSHandshake",
    "TLSSetupError",
    "server_tls_context",
]
