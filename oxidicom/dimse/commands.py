"""DIMSE command sets (PS3.7 section 9 and Annex E): group 0000, implicit VR little endian.

Requests are decoded into :class:`Command`; responses are encoded straight to
bytes with every element PS3.7 marks mandatory for them.
"""

from __future__ import annotations

import struct
from enum import IntEnum

import msgspec

from oxidicom.support.extensions import load_compiled

_ELEMENT_HEADER = struct.Struct("<HHI")
_US = struct.Struct("<H")
_UL = struct.Struct("<I")

#: (0000,0800) CommandDataSetType value meaning "no data set follows" (PS3.7 E.1).
NO_DATASET = 0x0101

#: Largest command set accepted: real ones are a few hundred bytes.
MAX_COMMAND_SET_LENGTH = 64 * 1024


class CommandField(IntEnum):
    """(0000,0100) values, PS3.7 Annex E."""

    C_STORE_RQ = 0x0001
    C_STORE_RSP = 0x8001
    C_GET_RQ = 0x0010
    C_FIND_RQ = 0x0020
    C_MOVE_RQ = 0x0021
    C_ECHO_RQ = 0x0030
    C_ECHO_RSP = 0x8030
    N_EVENT_REPORT_RQ = 0x0100
    N_GET_RQ = 0x0110
    N_SET_RQ = 0x0120
    N_ACTION_RQ = 0x0130
    N_CREATE_RQ = 0x0140
    N_DELETE_RQ = 0x0150
    C_CANCEL_RQ = 0x0FFF


class Status(IntEnum):
    """Every status code we send (PS3.7 Annex C, PS3.4 B.2.3): the one table.

    Data set errors (:mod:`oxidicom.dicom.errors`) and storage errors carry one of
    these; the conformance statement lists them.
    """

    SUCCESS = 0x0000
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    UNRECOGNIZED_OPERATION = 0x0211
    OUT_OF_RESOURCES = 0xA700
    #: The data set's SOPInstanceUID or SOPClassUID is not the command's (dcmtk: the same).
    DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    CANNOT_UNDERSTAND = 0xC000
    #: Still "Error: Cannot understand" (Cxxx); we use it for a required attribute
    #: that is missing or invalid, so that the two causes can be told apart.
    MISSING_REQUIRED_ATTRIBUTE = 0xC001


class Tag:
    """Group 0000 element tags used here, as (element) numbers: the group is always 0."""

    COMMAND_GROUP_LENGTH = 0x0000
    AFFECTED_SOP_CLASS_UID = 0x0002
    REQUESTED_SOP_CLASS_UID = 0x0003
    COMMAND_FIELD = 0x0100
    MESSAGE_ID = 0x0110
    MESSAGE_ID_BEING_RESPONDED_TO = 0x0120
    MOVE_ORIGINATOR_AE_TITLE = 0x1030
    PRIORITY = 0x0700
    COMMAND_DATA_SET_TYPE = 0x0800
    STATUS = 0x0900
    ERROR_COMMENT = 0x0902
    AFFECTED_SOP_INSTANCE_UID = 0x1000
    REQUESTED_SOP_INSTANCE_UID = 0x1001
    MOVE_ORIGINATOR_MESSAGE_ID = 0x1031


class CommandError(Exception):
    """A command set that cannot be decoded: the association must be aborted."""


class Command(msgspec.Struct, frozen=True, gc=False):
    """A decoded request command set: the fields a receiver acts on."""

    command_field: int
    message_id: int
    has_dataset: bool
    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    requested_sop_class_uid: str | None = None
    priority: int | None = None
    move_originator_ae_title: str | None = None


def _text(value: bytes | memoryview) -> str:
    # Latin-1 both ways (see _ui): a UID with a stray non-ASCII byte is echoed unchanged
    # in the response instead of making its encoding fail.
    return bytes(value).decode("latin-1").strip("\x00 ")


# Plain ints for the decoder's loop: attribute lookups on Tag cost more than the work.
_COMMAND_FIELD = Tag.COMMAND_FIELD
_MESSAGE_ID = Tag.MESSAGE_ID
_COMMAND_DATA_SET_TYPE = Tag.COMMAND_DATA_SET_TYPE
_PRIORITY = Tag.PRIORITY
_AFFECTED_SOP_CLASS_UID = Tag.AFFECTED_SOP_CLASS_UID
_AFFECTED_SOP_INSTANCE_UID = Tag.AFFECTED_SOP_INSTANCE_UID
_REQUESTED_SOP_CLASS_UID = Tag.REQUESTED_SOP_CLASS_UID
_MOVE_ORIGINATOR_AE_TITLE = Tag.MOVE_ORIGINATOR_AE_TITLE
_C_CANCEL_RQ = int(CommandField.C_CANCEL_RQ)


def decode_command(data: bytes | memoryview) -> Command:
    """Decode a request command set; raise :class:`CommandError` when it is unusable."""
    view = memoryview(data)
    end = len(view)
    offset = 0
    command_field = message_id = dataset_type = priority = None
    affected_class = affected_instance = requested_class = move_originator = None
    unpack_header = _ELEMENT_HEADER.unpack_from
    us_elements = _US_ELEMENTS
    while offset < end:
        if end - offset < 8:
            raise CommandError(f"command set ends inside an element header at byte {offset}")
        group, element, length = unpack_header(view, offset)
        offset += 8
        if length > end - offset:
            raise CommandError(f"element (0000,{element:04X}) overruns the command set")
        if group != 0:
            raise CommandError(f"element ({group:04X},{element:04X}) is not in group 0000")
        start = offset
        offset += length
        if element in us_elements:
            if length != 2:
                raise CommandError(f"US element (0000,{element:04X}) has length {length}")
            number = view[start] | view[start + 1] << 8
            if element == _COMMAND_FIELD:
                command_field = number
            elif element == _MESSAGE_ID:
                message_id = number
            elif element == _COMMAND_DATA_SET_TYPE:
                dataset_type = number
            elif element == _PRIORITY:
                priority = number
        elif element == _AFFECTED_SOP_CLASS_UID:
            affected_class = _text(view[start:offset])
        elif element == _AFFECTED_SOP_INSTANCE_UID:
            affected_instance = _text(view[start:offset])
        elif element == _REQUESTED_SOP_CLASS_UID:
            requested_class = _text(view[start:offset])
        elif element == _MOVE_ORIGINATOR_AE_TITLE:
            move_originator = _text(view[start:offset])
    if command_field is None:
        raise CommandError("command set has no CommandField (0000,0100)")
    if dataset_type is None:
        raise CommandError("command set has no CommandDataSetType (0000,0800)")
    if message_id is None:
        if command_field == _C_CANCEL_RQ:
            message_id = 0  # C-CANCEL-RQ carries MessageIDBeingRespondedTo instead
        else:
            raise CommandError("command set has no MessageID (0000,0110)")
    return Command(
        command_field=command_field,
        message_id=message_id,
        has_dataset=dataset_type != NO_DATASET,
        affected_sop_class_uid=affected_class,
        affected_sop_instance_uid=affected_instance,
        requested_sop_class_uid=requested_class,
        priority=priority,
        move_originator_ae_title=move_originator,
    )


_US_ELEMENTS = frozenset(
    (
        Tag.COMMAND_FIELD,
        Tag.MESSAGE_ID,
        Tag.MESSAGE_ID_BEING_RESPONDED_TO,
        Tag.PRIORITY,
        Tag.COMMAND_DATA_SET_TYPE,
        Tag.STATUS,
        Tag.MOVE_ORIGINATOR_MESSAGE_ID,
    )
)


def _element(element: int, value: bytes) -> bytes:
    return _ELEMENT_HEADER.pack(0, element, len(value)) + value


def _ui(uid: str) -> bytes:
    raw = uid.encode("latin-1", "replace")
    return raw + b"\x00" if len(raw) % 2 else raw


def _lo(text: str) -> bytes:
    raw = text.encode("ascii", "replace")[:64]
    return raw + b" " if len(raw) % 2 else raw


def encode_response(
    command_field: int,
    message_id_being_responded_to: int,
    status: int,
    *,
    affected_sop_class_uid: str | None = None,
    affected_sop_instance_uid: str | None = None,
    error_comment: str | None = None,
) -> bytes:
    """A response command set with its group length, elements in ascending tag order.

    For C-STORE-RSP (PS3.7 Table 9.3-2) and C-ECHO-RSP (Table 9.3-13) the
    mandatory elements are the group length, AffectedSOPClassUID, CommandField,
    MessageIDBeingRespondedTo, CommandDataSetType and Status, plus
    AffectedSOPInstanceUID for C-STORE.
    """
    parts = []
    if affected_sop_class_uid is not None:
        parts.append(_element(Tag.AFFECTED_SOP_CLASS_UID, _ui(affected_sop_class_uid)))
    # CommandField, MessageIDBeingRespondedTo, CommandDataSetType, Status: one pack.
    parts.append(_response_numbers(command_field, message_id_being_responded_to, status))
    if error_comment:
        parts.append(_element(Tag.ERROR_COMMENT, _lo(error_comment)))
    if affected_sop_instance_uid is not None:
        parts.append(_element(Tag.AFFECTED_SOP_INSTANCE_UID, _ui(affected_sop_instance_uid)))
    body = b"".join(parts)
    return _element(Tag.COMMAND_GROUP_LENGTH, _UL.pack(len(body))) + body


_RESPONSE_NUMBERS_STRUCT = struct.Struct("<HHIH HHIH HHIH HHIH")


def _response_numbers(command_field: int, message_id: int, status: int) -> bytes:
    """The four US elements every response carries, in tag order, packed at once."""
    return _RESPONSE_NUMBERS_STRUCT.pack(
        0, 0x0100, 2, command_field,  # CommandField
        0, 0x0120, 2, message_id,  # MessageIDBeingRespondedTo
        0, 0x0800, 2, NO_DATASET,  # CommandDataSetType
        0, 0x0900, 2, status,  # Status
    )  # fmt: skip


def encode_request(
    command_field: int,
    message_id: int,
    *,
    affected_sop_class_uid: str | None = None,
    affected_sop_instance_uid: str | None = None,
    has_dataset: bool = False,
    priority: int | None = None,
) -> bytes:
    """A request command set (used by the ``echo`` client and by tests)."""
    body = b""
    if affected_sop_class_uid is not None:
        body += _element(Tag.AFFECTED_SOP_CLASS_UID, _ui(affected_sop_class_uid))
    body += _element(Tag.COMMAND_FIELD, _US.pack(command_field))
    body += _element(Tag.MESSAGE_ID, _US.pack(message_id))
    if priority is not None:
        body += _element(Tag.PRIORITY, _US.pack(priority))
    body += _element(Tag.COMMAND_DATA_SET_TYPE, _US.pack(0x0000 if has_dataset else NO_DATASET))
    if affected_sop_instance_uid is not None:
        body += _element(Tag.AFFECTED_SOP_INSTANCE_UID, _ui(affected_sop_instance_uid))
    return _element(Tag.COMMAND_GROUP_LENGTH, _UL.pack(len(body))) + body


def decode_response_status(data: bytes | memoryview) -> tuple[int, int, int]:
    """(CommandField, MessageIDBeingRespondedTo, Status) of a response command set."""
    view = memoryview(data)
    offset, end = 0, len(view)
    found: dict[int, int] = {}
    while offset + 8 <= end:
        _, element, length = _ELEMENT_HEADER.unpack_from(view, offset)
        offset += 8
        if length == 2 and element in _US_ELEMENTS:
            found[element] = _US.unpack_from(view, offset)[0]
        offset += length
    try:
        return (
            found[Tag.COMMAND_FIELD],
            found[Tag.MESSAGE_ID_BEING_RESPONDED_TO],
            found[Tag.STATUS],
        )
    except KeyError as missing:
        raise CommandError(f"response lacks element (0000,{missing.args[0]:04X})") from None


# -- the compiled twin ------------------------------------------------------------------
# The pure-Python functions above are the reference; ``_commands_c`` does the same
# faster (same Command, bytes and CommandError messages) and hands whatever is off its
# fast path back to them. Their ``_py`` names stay for the tests of both.
decode_command_py = decode_command
encode_response_py = encode_response

_c = load_compiled("oxidicom.dimse._commands_c")
if _c is not None:
    decode_command = _c.decode_command
    encode_response = _c.encode_response
