"""Numeric constants of the DICOM Upper Layer protocol (PS3.8 section 9.3)."""

from enum import IntEnum

#: PS3.8 9.3.2: the only protocol version (bit 0 of the Protocol-version field).
PROTOCOL_VERSION = 0x0001

#: PS3.7 Annex A.2.1: the one DICOM application context name.
DICOM_APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

#: Length of the fixed PDU header: type (1), reserved (1), length (4).
PDU_HEADER_LENGTH = 6

#: Length of a PDV item header: item length (4), presentation context ID (1),
#: message control header (1). PS3.8 9.3.5.1.
PDV_HEADER_LENGTH = 6


class PDUType(IntEnum):
    """PS3.8 Table 9-11 and friends: the first byte of every PDU."""

    A_ASSOCIATE_RQ = 0x01
    A_ASSOCIATE_AC = 0x02
    A_ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    A_RELEASE_RQ = 0x05
    A_RELEASE_RP = 0x06
    A_ABORT = 0x07


class ItemType(IntEnum):
    """Variable items of A-ASSOCIATE-RQ/AC (PS3.8 9.3.2, 9.3.3; PS3.7 Annex D.3.3)."""

    APPLICATION_CONTEXT = 0x10
    PRESENTATION_CONTEXT_RQ = 0x20
    PRESENTATION_CONTEXT_AC = 0x21
    ABSTRACT_SYNTAX = 0x30
    TRANSFER_SYNTAX = 0x40
    USER_INFORMATION = 0x50
    MAXIMUM_LENGTH = 0x51
    IMPLEMENTATION_CLASS_UID = 0x52
    ASYNCHRONOUS_OPERATIONS_WINDOW = 0x53
    SCP_SCU_ROLE_SELECTION = 0x54
    IMPLEMENTATION_VERSION_NAME = 0x55
    SOP_CLASS_EXTENDED_NEGOTIATION = 0x56
    SOP_CLASS_COMMON_EXTENDED_NEGOTIATION = 0x57
    USER_IDENTITY_RQ = 0x58
    USER_IDENTITY_AC = 0x59


class AbortSource(IntEnum):
    """PS3.8 Table 9-26, field "Source" of A-ABORT."""

    SERVICE_USER = 0
    RESERVED = 1
    SERVICE_PROVIDER = 2


class AbortReason(IntEnum):
    """PS3.8 Table 9-26, field "Reason/Diag." when the source is the service provider."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    RESERVED = 3
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


class RejectResult(IntEnum):
    """PS3.8 Table 9-21, field "Result" of A-ASSOCIATE-RJ."""

    PERMANENT = 1
    TRANSIENT = 2


class RejectSource(IntEnum):
    """PS3.8 Table 9-21, field "Source" of A-ASSOCIATE-RJ."""

    SERVICE_USER = 1
    SERVICE_PROVIDER_ACSE = 2
    SERVICE_PROVIDER_PRESENTATION = 3


class UserRejectReason(IntEnum):
    """PS3.8 Table 9-21, "Reason/Diag." when the source is the service user."""

    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    CALLING_AE_TITLE_NOT_RECOGNIZED = 3
    CALLED_AE_TITLE_NOT_RECOGNIZED = 7


class ACSERejectReason(IntEnum):
    """PS3.8 Table 9-21, "Reason/Diag." when the source is the ACSE service provider."""

    NO_REASON_GIVEN = 1
    PROTOCOL_VERSION_NOT_SUPPORTED = 2


class PresentationRejectReason(IntEnum):
    """PS3.8 Table 9-21, "Reason/Diag." when the source is the presentation provider."""

    TEMPORARY_CONGESTION = 1
    LOCAL_LIMIT_EXCEEDED = 2


class ContextResult(IntEnum):
    """PS3.8 Table 9-18, "Result/Reason" of a presentation context in A-ASSOCIATE-AC."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4
