"""PS3.7 DIMSE: command sets (group 0000), the PDV assembler, the status codes.

The assembler turns the Upper Layer's data fragments into a command, then the data
set's fragments, which it passes through untouched for storage to stream.
"""

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
