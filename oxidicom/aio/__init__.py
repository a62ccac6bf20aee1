"""The thin asyncio shell: the listening socket, one protocol per connection, TLS.

Bytes from the socket go into the sans-IO :class:`~oxidicom.ul.connection.Connection`,
its events to the :class:`~oxidicom.scp.association.Association`; what the core queued
goes back out. Timers, flow control and closing the socket live here, nothing else.
"""

from oxidicom.aio.context import ScopedProtocol
from oxidicom.aio.protocol import AssociationProtocol
from oxidicom.aio.server import Receiver
from oxidicom.aio.tls import TLSHandshake, TLSSetupError, server_tls_context

__all__ = [
    "AssociationProtocol",
    "Receiver",
    "ScopedProtocol",
    "TLSHandshake",
    "TLSSetupError",
    "server_tls_context",
]
