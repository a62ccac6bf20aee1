"""The DICOM Upper Layer (PS3.8) of an association acceptor, sans-IO.

:class:`Connection` takes bytes and time and returns :data:`Event` values and bytes to
send; :mod:`~oxidicom.ul.pdu` parses and encodes PDUs; :mod:`~oxidicom.ul.fsm` is
Table 9-10 as data. Nothing here touches sockets, clocks, files or asyncio.
"""

from oxidicom.ul.connection import Connection
from oxidicom.ul.constants import (
    DICOM_APPLICATION_CONTEXT,
    PDU_HEADER_LENGTH,
    PROTOCOL_VERSION,
    AbortReason,
    AbortSource,
    ACSERejectReason,
    ContextResult,
    PDUType,
    PresentationRejectReason,
    RejectResult,
    RejectSource,
    UserRejectReason,
)
from oxidicom.ul.errors import ULProtocolError
from oxidicom.ul.events import (
    AbortSent,
    AssociationRequested,
    ConnectionClosed,
    DataFragment,
    Event,
    PeerAborted,
    ReleaseRequested,
    TimedOut,
)
from oxidicom.ul.fsm import State
from oxidicom.ul.pdu import (
    PDU,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsynchronousOperationsWindow,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    PresentationDataValue,
    ReleaseRP,
    ReleaseRQ,
    RoleSelection,
    UserInformation,
    encode,
    parse_body,
    parse_pdu_header,
)

__all__ = [
    "DICOM_APPLICATION_CONTEXT",
    "PDU",
    "PDU_HEADER_LENGTH",
    "PROTOCOL_VERSION",
    "ACSERejectReason",
    "Abort",
    "AbortReason",
    "AbortSent",
    "AbortSource",
    "AssociateAC",
    "AssociateRJ",
    "AssociateRQ",
    "AssociationRequested",
    "AsynchronousOperationsWindow",
    "Connection",
    "ConnectionClosed",
    "ContextResult",
    "DataFragment",
    "Event",
    "PDUType",
    "PDataTF",
    "PeerAborted",
    "PresentationContextAC",
    "PresentationContextRQ",
    "PresentationDataValue",
    "PresentationRejectReason",
    "RejectResult",
    "RejectSource",
    "ReleaseRP",
    "ReleaseRQ",
    "ReleaseRequested",
    "RoleSelection",
    "State",
    "TimedOut",
    "ULProtocolError",
    "UserInformation",
    "UserRejectReason",
    "encode",
    "parse_body",
    "parse_pdu_header",
]
