"""PS3.7 DIMSE: command sets (group 0000), the PDV assembler, the status codes.

The assembler turns the Upper Layer's data fragments into a command, then the data
set's fragments, which it passes through untouched for storage to stream.
"""

from typing import TYPE_CHECKING

from oxidicom.support.lazy import lazy_exports

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

# Imported on first use (oxidicom.support.lazy).
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
__getattr__ = lazy_exports(__name__, _WHERE)


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
