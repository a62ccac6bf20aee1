"""DIMSE command sets and the PDV -> message assembler, on captured traffic."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pydicom.filereader import read_dataset

from oxidicom.dimse.assembler import CommandReceived, MessageAssembler
from oxidicom.dimse.commands import (
    NO_DATASET,
    Command,
    CommandError,
    CommandField,
    Status,
    decode_response_status,
    encode_request,
)
from oxidicom.ul import pdu as ul
from oxidicom.ul.events import DataFragment
from tests.dimse.twins import Codec, use_codec
from tests.implementations import IMPLEMENTATIONS
from tests.ul._helpers import run_acceptor
from tests.vectors import stream, vector

VERIFICATION = "1.2.840.10008.1.1"
MR = "1.2.840.10008.5.1.4.1.1.4"
SC = "1.2.840.10008.5.1.4.1.1.7"
SAG_INSTANCE = "1.3.12.2.1107.5.2.19.45152.2013030808110258929186035"


@pytest.fixture(params=IMPLEMENTATIONS)
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Codec:
    """The pure-Python codec, then the compiled one; the assembler uses the same."""
    return use_codec(request.param, monkeypatch)


def command_of(scenario: str, index: int) -> bytes:
    ((pdv,),) = [ul.parse_pdu(vector(scenario, index).raw).values]
    assert pdv.is_command and pdv.is_last
    return pdv.data


def elements(raw: bytes) -> list[tuple[int, int, bytes]]:
    """(group, element, value) of an implicit VR little endian command set."""
    out, offset = [], 0
    while offset < len(raw):
        group, element, length = struct.unpack_from("<HHI", raw, offset)
        out.append((group, element, raw[offset + 8 : offset + 8 + length]))
        offset += 8 + length
    assert offset == len(raw)
    return out


# -- decode_command on captured requests ---------------------------------------------


def test_dcmtk_c_echo_rq(codec):
    assert codec.decode_command(command_of("dcmtk_echoscu", 3)) == Command(
        command_field=CommandField.C_ECHO_RQ,
        message_id=1,
        has_dataset=False,
        affected_sop_class_uid=VERIFICATION,
    )


def test_dcmtk_c_store_rq(codec):
    command = codec.decode_command(command_of("dcmtk_storescu", 3))
    assert command == Command(
        command_field=CommandField.C_STORE_RQ,
        message_id=1,
        has_dataset=True,
        affected_sop_class_uid=MR,
        affected_sop_instance_uid=SAG_INSTANCE,
        priority=0,
    )


def test_pynetdicom_c_echo_and_c_store_rq(codec):
    echo = codec.decode_command(command_of("pynetdicom_scu_extneg", 3))
    assert (echo.command_field, echo.has_dataset, echo.affected_sop_class_uid) == (
        0x0030,
        False,
        VERIFICATION,
    )
    store = codec.decode_command(command_of("pynetdicom_scu_to_storescp", 5))
    assert store == Command(
        command_field=CommandField.C_STORE_RQ,
        message_id=1,
        has_dataset=True,
        affected_sop_class_uid=SC,
        # pynetdicom pads the odd-length UID with a NUL; it is stripped.
        affected_sop_instance_uid="1.2.826.0.1.3680043.8.498.1",
        priority=2,  # pynetdicom's default: LOW
    )


def test_captured_responses():
    assert decode_response_status(command_of("dcmtk_echoscu", 4)) == (0x8030, 1, 0)
    assert decode_response_status(command_of("dcmtk_storescu", 19)) == (0x8001, 1, 0)
    assert decode_response_status(command_of("pynetdicom_scu_extneg", 7)) == (0x8001, 1, 0)


# -- encode_response ------------------------------------------------------------------


def test_encode_response_is_byte_identical_to_dcmtk_and_pynetdicom(codec):
    assert command_of("dcmtk_echoscu", 4) == codec.encode_response(
        0x8030, 1, 0, affected_sop_class_uid=VERIFICATION
    )
    assert command_of("dcmtk_storescu", 19) == codec.encode_response(
        0x8001, 1, 0, affected_sop_class_uid=MR, affected_sop_instance_uid=SAG_INSTANCE
    )
    assert command_of("pynetdicom_scu_extneg", 7) == codec.encode_response(
        0x8001,
        1,
        0,
        affected_sop_class_uid=SC,
        affected_sop_instance_uid="1.2.826.0.1.3680043.8.498.1",
    )


def parse_with_pydicom(raw: bytes):
    return read_dataset(BytesIO(raw), is_implicit_VR=True, is_little_endian=True)


def test_c_store_rsp_read_by_pydicom(codec):
    raw = codec.encode_response(
        0x8001,
        0x1234,
        Status.OUT_OF_RESOURCES,
        affected_sop_class_uid=MR,
        affected_sop_instance_uid="1.2.3.45",
        error_comment="disk full",
    )
    ds = parse_with_pydicom(raw)
    assert ds.CommandGroupLength == len(raw) - 12
    assert ds.AffectedSOPClassUID == MR
    assert ds.CommandField == 0x8001
    assert ds.MessageIDBeingRespondedTo == 0x1234
    assert ds.CommandDataSetType == NO_DATASET
    assert ds.Status == 0xA700
    assert ds.AffectedSOPInstanceUID == "1.2.3.45"
    assert ds.ErrorComment == "disk full"
    tags = [(g << 16) | e for g, e, _ in elements(raw)]
    assert tags == sorted(tags) and tags[0] == 0
    assert all(len(value) % 2 == 0 for _, _, value in elements(raw))


def test_c_echo_rsp_read_by_pydicom(codec):
    raw = codec.encode_response(0x8030, 7, 0, affected_sop_class_uid=VERIFICATION)
    ds = parse_with_pydicom(raw)
    assert ds.CommandGroupLength == len(raw) - 12
    assert [e.keyword for e in ds] == [
        "CommandGroupLength",
        "AffectedSOPClassUID",
        "CommandField",
        "MessageIDBeingRespondedTo",
        "CommandDataSetType",
        "Status",
    ]
    assert (ds.CommandField, ds.MessageIDBeingRespondedTo, ds.Status) == (0x8030, 7, 0)


def test_error_comment_is_padded_and_capped(codec):
    raw = codec.encode_response(0x8001, 1, 0xC000, error_comment="x" * 99)
    ds = parse_with_pydicom(raw)
    assert ds.ErrorComment == "x" * 64
    raw = codec.encode_response(0x8001, 1, 0xC000, error_comment="odd")
    assert (0, 0x0902, b"odd ") in elements(raw)


def test_request_round_trip(codec):
    raw = encode_request(
        CommandField.C_STORE_RQ,
        9,
        affected_sop_class_uid=MR,
        affected_sop_instance_uid="1.2.3",
        has_dataset=True,
        priority=1,
    )
    assert codec.decode_command(raw) == Command(1, 9, True, MR, "1.2.3", None, 1)
    assert parse_with_pydicom(raw).CommandGroupLength == len(raw) - 12


# -- decode_command errors ------------------------------------------------------------

GOOD = encode_request(CommandField.C_ECHO_RQ, 1, affected_sop_class_uid=VERIFICATION)


def element(group: int, elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", group, elem, len(value)) + value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (GOOD[:-1], "overruns"),
        (GOOD + b"\x00\x00\x00", "inside an element header"),
        (GOOD + element(8, 0x18, b"1.2\x00"), "not in group 0000"),
        (
            GOOD.replace(b"\x00\x01\x02\x00\x00\x00", b"\x00\x01\x04\x00\x00\x00") + b"\x00\x00",
            "US",
        ),
        (element(0, 0x0110, b"\x01\x00") + element(0, 0x0800, b"\x01\x01"), "CommandField"),
        (element(0, 0x0100, b"\x30\x00") + element(0, 0x0110, b"\x01\x00"), "CommandDataSetType"),
        (element(0, 0x0100, b"\x30\x00") + element(0, 0x0800, b"\x01\x01"), "MessageID"),
    ],
    ids=["overrun", "stray", "group", "us-length", "no-field", "no-type", "no-id"],
)
def test_decode_command_errors(raw, message, codec):
    with pytest.raises(CommandError, match=message):
        codec.decode_command(raw)


def test_c_cancel_without_message_id(codec):
    raw = element(0, 0x0100, b"\xff\x0f") + element(0, 0x0120, b"\x05\x00")
    raw += element(0, 0x0800, b"\x01\x01")
    assert codec.decode_command(raw).message_id == 0


def test_decode_response_status_missing_status():
    raw = element(0, 0x0100, b"\x30\x80") + element(0, 0x0120, b"\x01\x00")
    with pytest.raises(CommandError, match=r"\(0000,0900\)"):
        decode_response_status(raw)


# -- the assembler ---------------------------------------------------------------------


def frag(context: int, command: bool, last: bool, data: bytes) -> DataFragment:
    return DataFragment(context, command, last, memoryview(data))


STORE = encode_request(
    1, 3, affected_sop_class_uid=MR, affected_sop_instance_uid="1.2", has_dataset=True
)
ECHO = encode_request(0x30, 4, affected_sop_class_uid=VERIFICATION)


def test_assembler_on_the_captured_storescu_stream(codec):
    events, _ = run_acceptor([stream("dcmtk_storescu", "rq")])
    assembler = MessageAssembler()
    out = [assembler.feed(e) for e in events if isinstance(e, DataFragment)]
    assert isinstance(out[0], CommandReceived)
    assert out[0].context_id == 113
    assert out[0].command.affected_sop_instance_uid == SAG_INSTANCE
    assert [type(o) for o in out[1:]] == [DataFragment, DataFragment]
    assert assembler.idle and assembler.dataset_context is None


def test_assembler_command_in_fragments(codec):
    assembler = MessageAssembler()
    assert assembler.feed(frag(1, True, False, STORE[:10])) is None
    assert not assembler.idle
    assert assembler.feed(frag(1, True, False, STORE[10:20])) is None
    received = assembler.feed(frag(1, True, True, STORE[20:]))
    assert received == CommandReceived(1, codec.decode_command(STORE))
    assert assembler.dataset_context == 1
    chunk = frag(1, False, False, b"abc")
    assert assembler.feed(chunk) is chunk
    assert assembler.feed(frag(1, False, True, b"")).is_last
    assert assembler.idle
    # The next message may use another context.
    assert assembler.feed(frag(3, True, True, ECHO)).command.command_field == 0x30
    assert assembler.idle


def test_data_without_command(codec):
    with pytest.raises(CommandError, match="without a command"):
        MessageAssembler().feed(frag(1, False, True, b"x"))


def test_data_after_a_command_without_data_set(codec):
    assembler = MessageAssembler()
    assembler.feed(frag(1, True, True, ECHO))
    with pytest.raises(CommandError, match="without a command"):
        assembler.feed(frag(1, False, True, b"x"))


def test_data_on_another_context(codec):
    assembler = MessageAssembler()
    assembler.feed(frag(1, True, True, STORE))
    with pytest.raises(CommandError, match="on context 3, expected 1"):
        assembler.feed(frag(3, False, False, b"x"))


def test_command_while_data_set_pending(codec):
    assembler = MessageAssembler()
    assembler.feed(frag(1, True, True, STORE))
    assembler.feed(frag(1, False, False, b"x"))
    with pytest.raises(CommandError, match="still being received"):
        assembler.feed(frag(1, True, True, ECHO))


def test_command_fragments_on_two_contexts(codec):
    assembler = MessageAssembler()
    assembler.feed(frag(1, True, False, STORE[:8]))
    with pytest.raises(CommandError, match="two presentation contexts"):
        assembler.feed(frag(3, True, True, STORE[8:]))


def test_command_too_long(codec):
    assembler = MessageAssembler(max_command_length=100)
    assembler.feed(frag(1, True, False, bytes(60)))
    with pytest.raises(CommandError, match="longer than 100"):
        assembler.feed(frag(1, True, False, bytes(41)))


def test_undecodable_command_raises(codec):
    with pytest.raises(CommandError):
        MessageAssembler().feed(frag(1, True, True, b"\x00\x00\x00"))
