"""PS3.7 DIMSE: command sets (group 0000), the PDV assembler, the status codes.

The assembler turns the Upper Layer's data fragments into a command, then the data
set's fragments, which it passes through untouched for storage to stream.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oxidicom.dimse.assembler import CommandReceived, MessageAssembler
    from oxidicom.dimse.commands import (
        Command,
        CommandError,
        CommandField,
        Status,
        decode_response_status,
        encode_request,
        encode_response,
    )

# Imported on first use (PEP 562): a process that needs one of them does not pay for
# all (the supervisor of several workers imports settings, not the receive path).
_WHERE = {
    "CommandReceived": "oxidicom.dimse.assembler",
    "MessageAssembler": "oxidicom.dimse.assembler",
    "Command": "oxidicom.dimse.commands",
    "CommandError": "oxidicom.dimse.commands",
    "CommandField": "oxidicom.dimse.commands",
    "Status": "oxidicom.dimse.commands",
    "decode_response_status": "oxidicom.dimse.commands",
    "encode_request": "oxidicom.dimse.commands",
    "encode_response": "oxidicom.dimse.commands",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Command",
    "CommandError",
    "CommandField",
    "CommandReceived",
    "MessageAssembler",
    "Status",
    "decode_response_status",
    "encode_request",
    "encode_response",
]
