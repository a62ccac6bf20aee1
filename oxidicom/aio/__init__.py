"""The thin asyncio shell: the listening socket, one protocol per connection, TLS.

Bytes from the socket go into the sans-IO :class:`~oxidicom.ul.connection.Connection`,
its events to the :class:`~oxidicom.scp.association.Association`; what the core queued
goes back out. Timers, flow control and closing the socket live here, nothing else.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oxidicom.aio.context import ScopedProtocol
    from oxidicom.aio.protocol import AssociationProtocol
    from oxidicom.aio.server import Receiver
    from oxidicom.aio.tls import TLSHandshake, TLSSetupError, server_tls_context

# Imported on first use (PEP 562): a process that needs one of them does not pay for
# all (the supervisor of several workers imports settings, not the receive path).
_WHERE = {
    "ScopedProtocol": "oxidicom.aio.context",
    "AssociationProtocol": "oxidicom.aio.protocol",
    "Receiver": "oxidicom.aio.server",
    "TLSHandshake": "oxidicom.aio.tls",
    "TLSSetupError": "oxidicom.aio.tls",
    "server_tls_context": "oxidicom.aio.tls",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AssociationProtocol",
    "Receiver",
    "ScopedProtocol",
    "TLSHandshake",
    "TLSSetupError",
    "server_tls_context",
]
