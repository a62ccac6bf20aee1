"""The seven Upper Layer PDUs and their items: typed values, parsers and encoders.

PS3.8 section 9.3 gives every layout; byte offsets below count from the first
byte of the PDU (or item) header. Parsers take bytes and raise
:class:`ULProtocolError` for anything malformed; encoders compute every length
field from the encoded body, so a value built here always encodes to a valid PDU.

The connection (``connection.py``) streams P-DATA-TF bodies without building a
:class:`PDataTF`; :func:`parse_pdu` still decodes one whole, for tests and tools.
"""

from __future__ import annotations

import struct

import msgspec

from oxidicom.ul.constants import (
    PDU_HEADER_LENGTH,
    PROTOCOL_VERSION,
    AbortReason,
    AbortSource,
    ItemType,
    PDUType,
    RejectResult,
    RejectSource,
)
from oxidicom.ul.errors import ULProtocolError

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
#: PDU header (PS3.8 9.3.1): PDU type, reserved, PDU length (of what follows).
PDU_HEADER = struct.Struct(">BxI")
_ITEM_HEADER = struct.Struct(">BxH")
#: PDV item header (PS3.8 9.3.5.1): item length, presentation context ID, control header.
PDV_HEADER = struct.Struct(">IBB")

_AE_TITLE_LENGTH = 16
#: Bytes 6-73 of A-ASSOCIATE-RQ/AC: protocol version (2), reserved (2), called AE (16),
#: calling AE (16), reserved (32).
_ASSOCIATE_FIXED_LENGTH = 68

_INVALID = AbortReason.INVALID_PDU_PARAMETER_VALUE


class Struct(msgspec.Struct, frozen=True, gc=False):
    """Base of every PDU and item: immutable, slotted, cheap to build, comparable."""


# ---------------------------------------------------------------------------------------
# Items


class PresentationContextRQ(Struct):
    """Presentation Context Item of A-ASSOCIATE-RQ (PS3.8 9.3.2.2, item type 20H)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


class PresentationContextAC(Struct):
    """Presentation Context Item of A-ASSOCIATE-AC (PS3.8 9.3.3.2, item type 21H).

    ``result`` is a :class:`ContextResult` value; the standard says the transfer
    syntax is not significant unless the context is accepted.
    """

    context_id: int
    result: int
    transfer_syntax: str


class AsynchronousOperationsWindow(Struct):
    """PS3.7 D.3.3.3 (item type 53H); 0 means unlimited."""

    max_operations_invoked: int
    max_operations_performed: int


class RoleSelection(Struct):
    """SCP/SCU Role Selection (PS3.7 D.3.3.4, item type 54H)."""

    sop_class_uid: str
    scu_role: bool
    scp_role: bool


class ExtendedNegotiation(Struct):
    """SOP Class Extended Negotiation (PS3.7 D.3.3.5, item type 56H); kept, not acted on."""

    sop_class_uid: str
    application_information: bytes


class CommonExtendedNegotiation(Struct):
    """SOP Class Common Extended Negotiation (PS3.7 D.3.3.6, item type 57H)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_class_uids: tuple[str, ...] = ()


class UserIdentity(Struct):
    """User Identity Negotiation request (PS3.7 D.3.3.7, item type 58H); kept, not checked."""

    identity_type: int
    positive_response_requested: bool
    primary_field: bytes
    secondary_field: bytes = b""


class UserInformation(Struct):
    """User Information Item (PS3.8 9.3.2.3 / 9.3.3.3, item type 50H) and its sub-items."""

    maximum_length: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    asynchronous_operations_window: AsynchronousOperationsWindow | None = None
    role_selections: tuple[RoleSelection, ...] = ()
    extended_negotiations: tuple[ExtendedNegotiation, ...] = ()
    common_extended_negotiations: tuple[CommonExtendedNegotiation, ...] = ()
    user_identity: UserIdentity | None = None
    #: Server response of a User Identity AC sub-item (59H); only in A-ASSOCIATE-AC.
    user_identity_response: bytes | None = None


class PresentationDataValue(Struct):
    """One PDV item of a P-DATA-TF (PS3.8 9.3.5.1 and Annex E.2)."""

    context_id: int
    is_command: bool
    is_last: bool
    data: bytes


# ---------------------------------------------------------------------------------------
# PDUs


class AssociateRQ(Struct):
    """A-ASSOCIATE-RQ (PS3.8 9.3.2)."""

    called_ae_title: str
    calling_ae_title: str
    application_context: str
    presentation_contexts: tuple[PresentationContextRQ, ...]
    user_information: UserInformation
    protocol_version: int = PROTOCOL_VERSION


class AssociateAC(Struct):
    """A-ASSOCIATE-AC (PS3.8 9.3.3)."""

    called_ae_title: str
    calling_ae_title: str
    application_context: str
    presentation_contexts: tuple[PresentationContextAC, ...]
    user_information: UserInformation
    protocol_version: int = PROTOCOL_VERSION


class AssociateRJ(Struct):
    """A-ASSOCIATE-RJ (PS3.8 9.3.4): result, source and a source-specific reason."""

    result: RejectResult
    source: RejectSource
    reason: int


class PDataTF(Struct):
    """P-DATA-TF (PS3.8 9.3.5)."""

    values: tuple[PresentationDataValue, ...]


class ReleaseRQ(Struct):
    """A-RELEASE-RQ (PS3.8 9.3.6)."""


class ReleaseRP(Struct):
    """A-RELEASE-RP (PS3.8 9.3.7)."""


class Abort(Struct):
    """A-ABORT (PS3.8 9.3.8). ``reason`` is significant only for a provider abort."""

    source: AbortSource
    reason: AbortReason = AbortReason.NOT_SPECIFIED


PDU = AssociateRQ | AssociateAC | AssociateRJ | PDataTF | ReleaseRQ | ReleaseRP | Abort


# ---------------------------------------------------------------------------------------
# Encoding


def _item(item_type: int, body: bytes) -> bytes:
    if len(body) > 0xFFFF:
        raise ValueError(f"item {item_type:#04x} is {len(body)} bytes; the limit is 65535")
    return _ITEM_HEADER.pack(item_type, len(body)) + body


def _uid(value: str) -> bytes:
    # Latin-1, as the parser decodes: a value echoed from a request (a refused context's
    # transfer syntax, a role selection's SOP class) goes back byte for byte.
    return value.encode("latin-1")


def _with_u16_length(value: bytes) -> bytes:
    return _U16.pack(len(value)) + value


def _ae_title(title: str) -> bytes:
    # PS3.8 9.3.3.1: the AC returns the calling AE title as received; the parser decoded
    # it as Latin-1, so a peer's stray non-ASCII byte must not make our answer fail.
    raw = title.encode("latin-1")
    if len(raw) > _AE_TITLE_LENGTH:
        raise ValueError(f"AE title {title!r} is longer than 16 characters")
    return raw.ljust(_AE_TITLE_LENGTH, b" ")


#: The order we write User Information sub-items in. PS3.7 D.3.3 sets none; dcmtk and
#: pynetdicom both put the implementation version name right after the class UID.
USER_INFORMATION_ORDER = (0x51, 0x52, 0x55, 0x53, 0x54, 0x56, 0x57, 0x58, 0x59)


def _encode_user_information(info: UserInformation) -> bytes:
    parts: list[bytes] = []
    if info.maximum_length is not None:
        parts.append(_item(ItemType.MAXIMUM_LENGTH, _U32.pack(info.maximum_length)))
    if info.implementation_class_uid is not None:
        parts.append(_item(ItemType.IMPLEMENTATION_CLASS_UID, _uid(info.implementation_class_uid)))
    if info.implementation_version_name is not None:
        name = info.implementation_version_name.encode("latin-1")
        parts.append(_item(ItemType.IMPLEMENTATION_VERSION_NAME, name))
    window = info.asynchronous_operations_window
    if window is not None:
        body = _U16.pack(window.max_operations_invoked) + _U16.pack(window.max_operations_performed)
        parts.append(_item(ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW, body))
    for role in info.role_selections:
        body = _with_u16_length(_uid(role.sop_class_uid)) + bytes((role.scu_role, role.scp_role))
        parts.append(_item(ItemType.SCP_SCU_ROLE_SELECTION, body))
    for ext in info.extended_negotiations:
        body = _with_u16_length(_uid(ext.sop_class_uid)) + ext.application_information
        parts.append(_item(ItemType.SOP_CLASS_EXTENDED_NEGOTIATION, body))
    for common in info.common_extended_negotiations:
        related = b"".join(_with_u16_length(_uid(u)) for u in common.related_general_sop_class_uids)
        body = (
            _with_u16_length(_uid(common.sop_class_uid))
            + _with_u16_length(_uid(common.service_class_uid))
            + _with_u16_length(related)
        )
        parts.append(_item(ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION, body))
    if info.user_identity is not None:
        ident = info.user_identity
        body = (
            bytes((ident.identity_type, ident.positive_response_requested))
            + _with_u16_length(ident.primary_field)
            + _with_u16_length(ident.secondary_field)
        )
        parts.append(_item(ItemType.USER_IDENTITY_RQ, body))
    if info.user_identity_response is not None:
        body = _with_u16_length(info.user_identity_response)
        parts.append(_item(ItemType.USER_IDENTITY_AC, body))
    return _item(ItemType.USER_INFORMATION, b"".join(parts))


def _pdu(pdu_type: PDUType, body: bytes) -> bytes:
    return PDU_HEADER.pack(pdu_type, len(body)) + body


def _associate_fixed(pdu: AssociateRQ | AssociateAC) -> bytes:
    return (
        _U16.pack(pdu.protocol_version)
        + b"\x00\x00"
        + _ae_title(pdu.called_ae_title)
        + _ae_title(pdu.calling_ae_title)
        + bytes(32)
        + _item(ItemType.APPLICATION_CONTEXT, _uid(pdu.application_context))
    )


def encode_pdv_header(context_id: int, is_command: bool, is_last: bool, data_length: int) -> bytes:
    """The 6-byte PDV item header (PS3.8 9.3.5.1, control header per Annex E.2)."""
    return PDV_HEADER.pack(data_length + 2, context_id, is_command | (is_last << 1))


def encode(pdu: PDU) -> bytes:
    """Encode any PDU to its exact wire bytes."""
    match pdu:
        case PDataTF(values=values):
            body = b"".join(
                encode_pdv_header(v.context_id, v.is_command, v.is_last, len(v.data)) + v.data
                for v in values
            )
            return _pdu(PDUType.P_DATA_TF, body)
        case AssociateRQ():
            contexts = b"".join(
                _item(
                    ItemType.PRESENTATION_CONTEXT_RQ,
                    bytes((pc.context_id, 0, 0, 0))
                    + _item(ItemType.ABSTRACT_SYNTAX, _uid(pc.abstract_syntax))
                    + b"".join(
                        _item(ItemType.TRANSFER_SYNTAX, _uid(t)) for t in pc.transfer_syntaxes
                    ),
                )
                for pc in pdu.presentation_contexts
            )
            body = _associate_fixed(pdu) + contexts + _encode_user_information(pdu.user_information)
            return _pdu(PDUType.A_ASSOCIATE_RQ, body)
        case AssociateAC():
            contexts = b"".join(
                _item(
                    ItemType.PRESENTATION_CONTEXT_AC,
                    bytes((pc.context_id, 0, pc.result, 0))
                    + _item(ItemType.TRANSFER_SYNTAX, _uid(pc.transfer_syntax)),
                )
                for pc in pdu.presentation_contexts
            )
            body = _associate_fixed(pdu) + contexts + _encode_user_information(pdu.user_information)
            return _pdu(PDUType.A_ASSOCIATE_AC, body)
        case AssociateRJ(result=result, source=source, reason=reason):
            return _pdu(PDUType.A_ASSOCIATE_RJ, bytes((0, result, source, reason)))
        case ReleaseRQ():
            return _pdu(PDUType.A_RELEASE_RQ, bytes(4))
        case ReleaseRP():
            return _pdu(PDUType.A_RELEASE_RP, bytes(4))
        case Abort(source=source, reason=reason):
            return _pdu(PDUType.A_ABORT, bytes((0, 0, source, reason)))
    raise TypeError(f"not a PDU: {pdu!r}")


# ---------------------------------------------------------------------------------------
# Parsing


def _text(raw: bytes | memoryview) -> str:
    """UIDs and names in items: ASCII, but tolerate trailing NUL/space padding and stray bytes."""
    return bytes(raw).decode("latin-1").rstrip("\x00 ")


def _ae(raw: bytes | memoryview) -> str:
    return bytes(raw).decode("latin-1").strip("\x00 ")


def _iter_items(body: memoryview, what: str) -> list[tuple[int, memoryview]]:
    """Split ``body`` into (item type, item value) pairs; every length must fit."""
    items: list[tuple[int, memoryview]] = []
    offset, end = 0, len(body)
    while offset < end:
        if end - offset < 4:
            raise ULProtocolError(_INVALID, f"{what}: {end - offset} stray bytes after the items")
        item_type, length = _ITEM_HEADER.unpack_from(body, offset)
        offset += 4
        if length > end - offset:
            raise ULProtocolError(
                _INVALID,
                f"{what}: item {item_type:#04x} claims {length} bytes, {end - offset} left",
            )
        items.append((item_type, body[offset : offset + length]))
        offset += length
    return items


def _u16_prefixed(body: memoryview, offset: int, what: str) -> tuple[memoryview, int]:
    if len(body) - offset < 2:
        raise ULProtocolError(_INVALID, f"{what}: truncated length field")
    (length,) = _U16.unpack_from(body, offset)
    offset += 2
    if length > len(body) - offset:
        raise ULProtocolError(_INVALID, f"{what}: field of {length} bytes overruns the item")
    return body[offset : offset + length], offset + length


def _parse_user_information(body: memoryview) -> UserInformation:
    fields: dict[str, object] = {}
    roles: list[RoleSelection] = []
    extended: list[ExtendedNegotiation] = []
    common: list[CommonExtendedNegotiation] = []
    for item_type, value in _iter_items(body, "user information"):
        if item_type == ItemType.MAXIMUM_LENGTH:
            if len(value) != 4:
                raise ULProtocolError(_INVALID, "maximum length sub-item must be 4 bytes")
            fields["maximum_length"] = _U32.unpack(value)[0]
        elif item_type == ItemType.IMPLEMENTATION_CLASS_UID:
            fields["implementation_class_uid"] = _text(value)
        elif item_type == ItemType.IMPLEMENTATION_VERSION_NAME:
            fields["implementation_version_name"] = _text(value)
        elif item_type == ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW:
            if len(value) != 4:
                raise ULProtocolError(_INVALID, "asynchronous operations window must be 4 bytes")
            invoked, performed = struct.unpack(">HH", value)
            fields["asynchronous_operations_window"] = AsynchronousOperationsWindow(
                invoked, performed
            )
        elif item_type == ItemType.SCP_SCU_ROLE_SELECTION:
            uid, offset = _u16_prefixed(value, 0, "role selection")
            if len(value) - offset != 2:
                raise ULProtocolError(_INVALID, "role selection must end with two role bytes")
            roles.append(RoleSelection(_text(uid), bool(value[offset]), bool(value[offset + 1])))
        elif item_type == ItemType.SOP_CLASS_EXTENDED_NEGOTIATION:
            uid, offset = _u16_prefixed(value, 0, "extended negotiation")
            extended.append(ExtendedNegotiation(_text(uid), bytes(value[offset:])))
        elif item_type == ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION:
            sop, offset = _u16_prefixed(value, 0, "common extended negotiation")
            service, offset = _u16_prefixed(value, offset, "common extended negotiation")
            related_block, offset = _u16_prefixed(value, offset, "common extended negotiation")
            related: list[str] = []
            inner = 0
            while inner < len(related_block):
                uid, inner = _u16_prefixed(related_block, inner, "related general SOP class")
                related.append(_text(uid))
            common.append(CommonExtendedNegotiation(_text(sop), _text(service), tuple(related)))
        elif item_type == ItemType.USER_IDENTITY_RQ:
            if len(value) < 2:
                raise ULProtocolError(_INVALID, "user identity sub-item is truncated")
            primary, offset = _u16_prefixed(value, 2, "user identity")
            secondary, offset = _u16_prefixed(value, offset, "user identity")
            fields["user_identity"] = UserIdentity(
                value[0], bool(value[1]), bytes(primary), bytes(secondary)
            )
        elif item_type == ItemType.USER_IDENTITY_AC:
            response, _ = _u16_prefixed(value, 0, "user identity response")
            fields["user_identity_response"] = bytes(response)
        # PS3.7 D.3.3: sub-items of unknown type are ignored.
    return UserInformation(
        role_selections=tuple(roles),
        extended_negotiations=tuple(extended),
        common_extended_negotiations=tuple(common),
        **fields,  # type: ignore[arg-type]
    )


def _parse_associate(
    body: memoryview, context_item: int
) -> tuple[int, str, str, str, list[tuple[int, memoryview]], UserInformation]:
    if len(body) < _ASSOCIATE_FIXED_LENGTH:
        raise ULProtocolError(_INVALID, f"A-ASSOCIATE PDU body of {len(body)} bytes is too short")
    (version,) = _U16.unpack_from(body, 0)
    called = _ae(body[4:20])
    calling = _ae(body[20:36])
    application_context = ""
    contexts: list[tuple[int, memoryview]] = []
    user_information = UserInformation()
    for item_type, value in _iter_items(body[_ASSOCIATE_FIXED_LENGTH:], "A-ASSOCIATE"):
        if item_type == ItemType.APPLICATION_CONTEXT:
            application_context = _text(value)
        elif item_type == context_item:
            contexts.append((item_type, value))
        elif item_type == ItemType.USER_INFORMATION:
            user_information = _parse_user_information(value)
        # Items of other types are ignored, as PS3.8 9.3.1 asks of reserved values.
    return version, called, calling, application_context, contexts, user_information


def _parse_context_rq(value: memoryview) -> PresentationContextRQ:
    if len(value) < 4:
        raise ULProtocolError(_INVALID, "presentation context item is shorter than 4 bytes")
    abstract = ""
    transfer: list[str] = []
    for sub_type, sub in _iter_items(value[4:], "presentation context"):
        if sub_type == ItemType.ABSTRACT_SYNTAX:
            abstract = _text(sub)
        elif sub_type == ItemType.TRANSFER_SYNTAX:
            transfer.append(_text(sub))
    return PresentationContextRQ(value[0], abstract, tuple(transfer))


def _parse_context_ac(value: memoryview) -> PresentationContextAC:
    if len(value) < 4:
        raise ULProtocolError(_INVALID, "presentation context item is shorter than 4 bytes")
    transfer = ""
    for sub_type, sub in _iter_items(value[4:], "presentation context"):
        if sub_type == ItemType.TRANSFER_SYNTAX:
            transfer = _text(sub)
    return PresentationContextAC(value[0], value[2], transfer)


def parse_pdata_values(body: memoryview) -> tuple[PresentationDataValue, ...]:
    """Split a whole P-DATA-TF body into its PDVs (PS3.8 9.3.5.1)."""
    values: list[PresentationDataValue] = []
    offset, end = 0, len(body)
    if end == 0:
        raise ULProtocolError(_INVALID, "P-DATA-TF without any PDV item")
    while offset < end:
        if end - offset < 6:
            raise ULProtocolError(_INVALID, "P-DATA-TF ends inside a PDV item header")
        length, context_id, control = PDV_HEADER.unpack_from(body, offset)
        if length < 2 or length - 2 > end - offset - 6:
            raise ULProtocolError(_INVALID, f"PDV item length {length} does not fit the PDU")
        data = bytes(body[offset + 6 : offset + 4 + length])
        values.append(PresentationDataValue(context_id, bool(control & 1), bool(control & 2), data))
        offset += 4 + length
    return tuple(values)


def parse_body(pdu_type: int, body: bytes | memoryview) -> PDU:
    """Decode the body of a PDU whose 6-byte header said ``pdu_type``."""
    view = memoryview(body)
    if pdu_type == PDUType.A_ASSOCIATE_RQ:
        version, called, calling, app, items, info = _parse_associate(
            view, ItemType.PRESENTATION_CONTEXT_RQ
        )
        contexts = tuple(_parse_context_rq(value) for _, value in items)
        return AssociateRQ(called, calling, app, contexts, info, version)
    if pdu_type == PDUType.A_ASSOCIATE_AC:
        version, called, calling, app, items, info = _parse_associate(
            view, ItemType.PRESENTATION_CONTEXT_AC
        )
        contexts_ac = tuple(_parse_context_ac(value) for _, value in items)
        return AssociateAC(called, calling, app, contexts_ac, info, version)
    if pdu_type == PDUType.P_DATA_TF:
        return PDataTF(parse_pdata_values(view))
    if pdu_type in (
        PDUType.A_ASSOCIATE_RJ,
        PDUType.A_RELEASE_RQ,
        PDUType.A_RELEASE_RP,
        PDUType.A_ABORT,
    ):
        if len(view) != 4:
            raise ULProtocolError(_INVALID, f"PDU type {pdu_type:#04x} must have a 4-byte body")
        if pdu_type == PDUType.A_RELEASE_RQ:
            return ReleaseRQ()
        if pdu_type == PDUType.A_RELEASE_RP:
            return ReleaseRP()
        if pdu_type == PDUType.A_ABORT:
            return Abort(_enum_or_raw(AbortSource, view[2]), _enum_or_raw(AbortReason, view[3]))
        return AssociateRJ(
            _enum_or_raw(RejectResult, view[1]), _enum_or_raw(RejectSource, view[2]), view[3]
        )
    raise ULProtocolError(AbortReason.UNRECOGNIZED_PDU, f"unknown PDU type {pdu_type:#04x}")


def _enum_or_raw(enum: type[int], value: int) -> int:
    """Keep a peer's out-of-range code as a plain int rather than failing on it."""
    try:
        return enum(value)
    except ValueError:
        return value


def parse_pdu(data: bytes | memoryview) -> PDU:
    """Decode exactly one whole PDU, header included."""
    view = memoryview(data)
    if len(view) < PDU_HEADER_LENGTH:
        raise ULProtocolError(_INVALID, "fewer than 6 bytes: not a PDU")
    pdu_type, length = PDU_HEADER.unpack_from(view, 0)
    if length != len(view) - PDU_HEADER_LENGTH:
        raise ULProtocolError(
            _INVALID,
            f"PDU length field says {length}, {len(view) - PDU_HEADER_LENGTH} bytes follow",
        )
    return parse_body(pdu_type, view[PDU_HEADER_LENGTH:])


def parse_pdu_header(header: bytes | memoryview) -> tuple[int, int]:
    """(PDU type, body length) from the 6 header bytes."""
    pdu_type, length = PDU_HEADER.unpack_from(header, 0)
    return pdu_type, length


__all__ = [
    "PDU",
    "PDU_HEADER",
    "PDV_HEADER",
    "USER_INFORMATION_ORDER",
    "Abort",
    "AssociateAC",
    "AssociateRJ",
    "AssociateRQ",
    "AsynchronousOperationsWindow",
    "CommonExtendedNegotiation",
    "ExtendedNegotiation",
    "PDataTF",
    "PresentationContextAC",
    "PresentationContextRQ",
    "PresentationDataValue",
    "ReleaseRP",
    "ReleaseRQ",
    "RoleSelection",
    "UserIdentity",
    "UserInformation",
    "encode",
    "encode_pdv_header",
    "parse_body",
    "parse_pdata_values",
    "parse_pdu",
    "parse_pdu_header",
]
