"""The DICOM Upper Layer (PS3.8) of an association acceptor, sans-IO.

:class:`Connection` takes bytes and time and returns :data:`Event` values and bytes to
send; :mod:`~oxidicom.ul.pdu` parses and encodes PDUs; :mod:`~oxidicom.ul.fsm` is
Table 9-10 as data. Nothing here touches sockets, clocks, files or asyncio.
"""

from typing import TYPE_CHECKING

from oxidicom.support.lazy import lazy_exports

if TYPE_CHECKING:
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

# Imported on first use (oxidicom.support.lazy).
_WHERE = {
    "Connection": "oxidicom.ul.connection",
    "DICOM_APPLICATION_CONTEXT": "oxidicom.ul.constants",
    "PDU_HEADER_LENGTH": "oxidicom.ul.constants",
    "PROTOCOL_VERSION": "oxidicom.ul.constants",
    "AbortReason": "oxidicom.ul.constants",
    "AbortSource": "oxidicom.ul.constants",
    "ACSERejectReason": "oxidicom.ul.constants",
    "ContextResult": "oxidicom.ul.constants",
    "PDUType": "oxidicom.ul.constants",
    "PresentationRejectReason": "oxidicom.ul.constants",
    "RejectResult": "oxidicom.ul.constants",
    "RejectSource": "oxidicom.ul.constants",
    "UserRejectReason": "oxidicom.ul.constants",
    "ULProtocolError": "oxidicom.ul.errors",
    "AbortSent": "oxidicom.ul.events",
    "AssociationRequested": "oxidicom.ul.events",
    "ConnectionClosed": "oxidicom.ul.events",
    "DataFragment": "oxidicom.ul.events",
    "Event": "oxidicom.ul.events",
    "PeerAborted": "oxidicom.ul.events",
    "ReleaseRequested": "oxidicom.ul.events",
    "TimedOut": "oxidicom.ul.events",
    "State": "oxidicom.ul.fsm",
    "PDU": "oxidicom.ul.pdu",
    "Abort": "oxidicom.ul.pdu",
    "AssociateAC": "oxidicom.ul.pdu",
    "AssociateRJ": "oxidicom.ul.pdu",
    "AssociateRQ": "oxidicom.ul.pdu",
    "AsynchronousOperationsWindow": "oxidicom.ul.pdu",
    "PDataTF": "oxidicom.ul.pdu",
    "PresentationContextAC": "oxidicom.ul.pdu",
    "PresentationContextRQ": "oxidicom.ul.pdu",
    "PresentationDataValue": "oxidicom.ul.pdu",
    "ReleaseRP": "oxidicom.ul.pdu",
    "ReleaseRQ": "oxidicom.ul.pdu",
    "RoleSelection": "oxidicom.ul.pdu",
    "UserInformation": "oxidicom.ul.pdu",
    "encode": "oxidicom.ul.pdu",
    "parse_body": "oxidicom.ul.pdu",
    "parse_pdu_header": "oxidicom.ul.pdu",
}
__getattr__ = lazy_exports(__name__, _WHERE)


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
