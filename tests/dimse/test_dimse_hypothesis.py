"""Hypothesis: command sets and PDV streams through MessageAssembler and decode_command.

Whatever the peer sends as PDV fragments, the assembler gives only complete commands,
data set fragments, None, or :class:`CommandError` (which the association answers with
one A-ABORT); well-formed command sets decode to exactly what was encoded, whole or
split into any fragments. ``tests/ul`` covers the bytes below the PDVs; this file the
DIMSE layer above them.
"""

from __future__ import annotations

import itertools
import struct
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxidicom.dimse import assembler as assembler_module
from oxidicom.dimse.assembler import CommandReceived, MessageAssembler, MessageAssemblerPy
from oxidicom.dimse.commands import (
    NO_DATASET,
    CommandError,
    CommandField,
    decode_response_status,
    encode_request,
)
from oxidicom.ul.events import AbortSent, DataFragment
from tests.dimse.twins import assembling_with, codec_of
from tests.implementations import IMPLEMENTATIONS, compiled_module
from tests.ul._helpers import abort_pdus, new_sta6

#: Every test below runs on the pure-Python codec, then on the compiled one.
over_both = pytest.mark.parametrize("kind", IMPLEMENTATIONS)

#: Group 0000 elements a request may carry (PS3.7 Annex E), and a few it may not.
KNOWN_ELEMENTS = [0x0000, 0x0002, 0x0003, 0x0100, 0x0110, 0x0120, 0x0700, 0x0800, 0x0900,
                  0x0902, 0x1000, 0x1001, 0x1030, 0x1031, 0x0001, 0xFFFF]  # fmt: skip
uids = st.text(st.sampled_from("0123456789."), min_size=1, max_size=64)
latin1 = st.text(st.characters(max_codepoint=255), max_size=70)


@st.composite
def command_sets(draw: st.DrawFn) -> bytes:
    """Group 0000 element lists: right and wrong tags, lengths and values."""
    out = bytearray()
    for _ in range(draw(st.integers(0, 10))):
        group = draw(st.sampled_from([0x0000, 0x0000, 0x0000, 0x0008]))
        element = draw(st.sampled_from(KNOWN_ELEMENTS))
        value = draw(
            st.sampled_from([b"\x01\x00", b"\x30\x00", b"\x01\x01", b"\x00\x00"])
            | st.binary(max_size=40)
        )
        length = len(value) if draw(st.integers(0, 9)) else draw(st.integers(0, 0xFFFFFFFF))
        out += struct.pack("<HHI", group, element, length) + value
    if draw(st.booleans()):
        out += draw(st.binary(max_size=7))
    return bytes(out)


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, object], bytes]:
    fields: dict[str, object] = {
        "command_field": draw(st.sampled_from([int(f) for f in CommandField if f < 0x8000])),
        "message_id": draw(st.integers(0, 0xFFFF)),
        "affected_sop_class_uid": draw(st.none() | uids),
        "affected_sop_instance_uid": draw(st.none() | uids),
        "has_dataset": draw(st.booleans()),
        "priority": draw(st.none() | st.integers(0, 2)),
    }
    return fields, encode_request(**fields)  # type: ignore[arg-type]


@st.composite
def fragments(draw: st.DrawFn) -> list[DataFragment]:
    """PDV fragments of any shape: contexts, command/data, last bits, payloads."""
    out = []
    for _ in range(draw(st.integers(1, 12))):
        payload = draw(command_sets() | requests().map(lambda r: r[1]) | st.binary(max_size=64))
        out.append(
            DataFragment(
                draw(st.sampled_from([1, 1, 3, 255])),
                draw(st.booleans()),
                draw(st.booleans()),
                memoryview(payload),
            )
        )
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [b""]


@over_both
@given(command_sets())
def test_decode_command_gives_a_command_or_command_error(kind: str, raw: bytes) -> None:
    decode_command = codec_of(kind).decode_command
    try:
        command = decode_command(raw)
    except CommandError:
        return
    assert 0 <= command.command_field <= 0xFFFF
    assert 0 <= command.message_id <= 0xFFFF


@over_both
@given(requests(), st.lists(st.integers(0, 400), max_size=6), st.sampled_from([1, 3, 255]))
def test_a_request_split_into_pdvs_decodes_to_what_was_encoded(
    kind: str, request: tuple[dict[str, object], bytes], cuts: list[int], context: int
) -> None:
    fields, raw = request
    assembler = MessageAssembler()
    pieces = split(raw, cuts)
    with assembling_with(kind):
        results = [
            assembler.feed(DataFragment(context, True, i == len(pieces) - 1, memoryview(piece)))
            for i, piece in enumerate(pieces)
        ]
    assert results[:-1] == [None] * (len(pieces) - 1)
    received = results[-1]
    assert isinstance(received, CommandReceived)
    assert received.context_id == context
    command = received.command
    assert command.command_field == fields["command_field"]
    assert command.message_id == fields["message_id"]
    assert command.has_dataset == fields["has_dataset"]
    assert command.affected_sop_class_uid == fields["affected_sop_class_uid"]
    assert command.affected_sop_instance_uid == fields["affected_sop_instance_uid"]
    assert command.priority == fields["priority"]
    assert assembler.dataset_context == (context if fields["has_dataset"] else None)


@over_both
@given(fragments())
def test_any_pdv_stream_gives_results_or_command_error(
    kind: str, stream: list[DataFragment]
) -> None:
    assembler = MessageAssembler(max_command_length=256)
    for fragment in stream:
        try:
            with assembling_with(kind):
                item = assembler.feed(fragment)
        except CommandError:
            return  # the association aborts here: nothing after it is read
        if isinstance(item, DataFragment):
            assert item is fragment and not fragment.is_command
        elif isinstance(item, CommandReceived):
            assert fragment.is_command and fragment.is_last
            assert item.context_id == fragment.context_id
        else:
            assert item is None and fragment.is_command and not fragment.is_last
        assert assembler.idle == (
            assembler.dataset_context is None and not (fragment.is_command and item is None)
        )


@pytest.fixture(scope="module")
def compiled_assembler() -> type[assembler_module.MessageAssemblerPy]:
    """The compiled assembler's class (oxidicom/dimse/_assembler_c.pyx), really loaded."""
    module = compiled_module("oxidicom.dimse._assembler_c")
    cls = assembler_module.MessageAssembler
    assert issubclass(cls, module._AssemblerState), "built, but not selected"
    return cls


def _outcome(assembler: assembler_module.MessageAssemblerPy, fragment: DataFragment) -> tuple:
    """What ``feed`` gave (the fragment itself, None, a command, or the error's text),
    and the state it left."""
    try:
        item = assembler.feed(fragment)
    except CommandError as error:
        result: object = ("error", str(error))
    else:
        result = "the fragment" if item is fragment else item
    state = (assembler.dataset_context, assembler.idle, bytes(assembler._command))
    return result, state


@given(fragments(), st.sampled_from([12, 100, 256]))
def test_both_assemblers_give_the_same_results_and_errors(
    compiled_assembler: type[assembler_module.MessageAssemblerPy],
    stream: list[DataFragment],
    max_command_length: int,
) -> None:
    reference = assembler_module.MessageAssemblerPy(max_command_length)
    compiled = compiled_assembler(max_command_length)
    for fragment in stream:
        outcome = _outcome(reference, fragment)
        assert _outcome(compiled, fragment) == outcome
        if isinstance(outcome[0], tuple):
            return  # the association aborts here: nothing after it is read


def test_the_compiled_assembler_reads_inherited_fields_and_refuses_other_than_slots() -> None:
    """``bind`` takes each field's offset from its member descriptor, a base's included
    (oxidicom/support/_slots.pxd), and refuses a field that is not an object slot."""
    module = compiled_module("oxidicom.dimse._assembler_c")

    class Inherited(DataFragment):  # its fields are DataFragment's slots
        pass

    class Property:
        is_command = property(lambda self: False)

    class DoubleMember:
        is_command = complex.__dict__["real"]  # a member descriptor, of a C double

    reference = vars(assembler_module)
    try:
        module.bind(SimpleNamespace(**{**reference, "DataFragment": Inherited}), MessageAssemblerPy)
        fragment = Inherited(3, False, True, memoryview(b"x"))
        compiled = MessageAssembler()
        compiled.dataset_context = 3
        assert compiled.feed(fragment) is fragment
        assert compiled.dataset_context is None
        for wrong, refusal in (
            (Property, "is not a slot"),
            (int, "is not a slot"),
            (DoubleMember, "is not an object slot"),
        ):
            namespace = SimpleNamespace(**{**reference, "DataFragment": wrong})
            with pytest.raises(TypeError, match=refusal):
                module.bind(namespace, MessageAssemblerPy)
    finally:
        module.bind(assembler_module, MessageAssemblerPy)
    plain = DataFragment(1, False, True, memoryview(b"y"))
    with pytest.raises(CommandError, match="without a command"):
        MessageAssembler().feed(plain)


@over_both
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.none() | latin1,
    st.none() | latin1,
    st.none() | latin1,
)
def test_responses_encode_for_any_received_uid(
    kind: str,
    message_id: int,
    status: int,
    sop_class: str | None,
    sop_instance: str | None,
    comment: str | None,
) -> None:
    """UIDs come from the peer (decoded as Latin-1): the response must always encode."""
    raw = codec_of(kind).encode_response(
        CommandField.C_STORE_RSP,
        message_id,
        status,
        affected_sop_class_uid=sop_class,
        affected_sop_instance_uid=sop_instance,
        error_comment=comment,
    )
    assert decode_response_status(raw) == (CommandField.C_STORE_RSP, message_id, status)
    assert len(raw) % 2 == 0
    elements = {}
    offset = 0
    while offset < len(raw):
        _, element, length = struct.unpack_from("<HHI", raw, offset)
        elements[element] = raw[offset + 8 : offset + 8 + length]
        offset += 8 + length
    assert offset == len(raw)
    assert struct.unpack("<H", elements[0x0800])[0] == NO_DATASET
    if sop_instance is not None:
        # Echoed byte for byte (Latin-1), padded to even length with NUL.
        assert elements[0x1000].rstrip(b"\x00") == sop_instance.encode("latin-1").rstrip(b"\x00")


@st.composite
def pdata_pdus(draw: st.DrawFn) -> bytes:
    """P-DATA-TF PDUs from PDV headers of any control byte, context and length."""
    pdvs = b""
    for _ in range(draw(st.integers(1, 4))):
        data = draw(st.binary(max_size=40) | command_sets() | requests().map(lambda r: r[1]))
        length = len(data) + 2 if draw(st.integers(0, 5)) else draw(st.integers(0, 0xFFFFFFFF))
        context = draw(st.sampled_from([1, 1, 3, 0, 255]))
        control = draw(st.sampled_from([0, 1, 2, 3]) | st.integers(0, 255))  # reserved bits too
        pdvs += struct.pack(">IBB", length, context, control) + data
    length = len(pdvs) if draw(st.integers(0, 5)) else draw(st.integers(0, len(pdvs) + 10))
    return struct.pack(">BxI", 4, length) + pdvs


@over_both
@given(st.lists(pdata_pdus(), min_size=1, max_size=4), st.lists(st.integers(1, 300), max_size=5))
def test_pdv_headers_through_the_connection_and_assembler(
    kind: str, pdus: list[bytes], cuts: list[int]
) -> None:
    """Events, DIMSE results or CommandError only; at most one A-ABORT goes out."""
    conn = new_sta6()
    assembler = MessageAssembler(max_command_length=256)
    aborts = 0
    for piece in split(b"".join(pdus), cuts):
        conn.receive_data(piece, 1.0)
        while (event := conn.next_event()) is not None:
            if isinstance(event, DataFragment):
                try:
                    with assembling_with(kind):
                        assembler.feed(event)
                except CommandError:
                    conn.abort()
            elif isinstance(event, AbortSent):
                aborts += 1
    assert aborts <= 1
    sent = conn.data_to_send()
    assert sent == b"" or len(abort_pdus(sent)) == 1
