"""The command-set codec's twins: the compiled one gives what the pure-Python one gives.

Round trips through both (hypothesis), then the inputs the compiled code hands back to
the reference (buffers that are not plain bytes, arguments of other types, numbers out
of range, text beyond Latin-1): the same results and the same errors, word for word.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxidicom.dimse.commands import (
    NO_DATASET,
    Command,
    CommandError,
    CommandField,
    Status,
    decode_response_status,
    encode_request,
)
from tests.dimse.test_dimse_hypothesis import command_sets
from tests.dimse.twins import Codec, codec_of
from tests.fuzz.targets import _result

MR = "1.2.840.10008.5.1.4.1.1.4"
uids = st.text(st.sampled_from("0123456789."), min_size=1, max_size=64)
#: Peer text: ASCII, Latin-1, and characters past Latin-1 (which encode as "?").
texts = st.text(st.characters(max_codepoint=0x2FFF, exclude_categories=["Cs"]), max_size=80)


def both() -> tuple[Codec, Codec]:
    return codec_of("python"), codec_of("compiled")


@given(
    st.sampled_from([int(f) for f in CommandField if f < 0x8000]),
    st.integers(0, 0xFFFF),
    st.none() | uids,
    st.none() | uids,
    st.booleans(),
    st.none() | st.integers(0, 2),
)
def test_request_round_trip_through_both(
    field: int,
    message_id: int,
    sop_class: str | None,
    sop_instance: str | None,
    has_dataset: bool,
    priority: int | None,
) -> None:
    raw = encode_request(
        field,
        message_id,
        affected_sop_class_uid=sop_class,
        affected_sop_instance_uid=sop_instance,
        has_dataset=has_dataset,
        priority=priority,
    )
    expected = Command(field, message_id, has_dataset, sop_class, sop_instance, None, priority)
    for codec in both():
        decoded = codec.decode_command(raw)
        assert decoded == expected
        assert type(decoded.has_dataset) is bool


@given(
    st.sampled_from([0x8001, 0x8030]),
    st.integers(0, 0xFFFF),
    st.sampled_from([int(s) for s in Status]) | st.integers(0, 0xFFFF),
    st.none() | texts,
    st.none() | texts,
    st.none() | texts,
)
def test_response_round_trip_through_both(
    field: int,
    message_id: int,
    status: int,
    sop_class: str | None,
    sop_instance: str | None,
    comment: str | None,
) -> None:
    python, compiled = both()
    arguments = {
        "affected_sop_class_uid": sop_class,
        "affected_sop_instance_uid": sop_instance,
        "error_comment": comment,
    }
    raw = python.encode_response(field, message_id, status, **arguments)
    assert compiled.encode_response(field, message_id, status, **arguments) == raw
    assert decode_response_status(raw) == (field, message_id, status)
    assert struct.unpack_from("<I", raw, 8)[0] == len(raw) - 12
    # What we send, a peer of ours decodes back to the same UIDs (as a request would).
    request = raw.replace(struct.pack("<HHIH", 0, 0x0800, 2, NO_DATASET), b"")
    request += struct.pack("<HHIH", 0, 0x0110, 2, message_id)
    request += struct.pack("<HHIH", 0, 0x0800, 2, NO_DATASET)
    assert _result(lambda: python.decode_command(request)) == _result(
        lambda: compiled.decode_command(request)
    )


@given(command_sets())
def test_any_command_set_decodes_alike(raw: bytes) -> None:
    python, compiled = both()
    for buffer in (raw, bytearray(raw), memoryview(raw), memoryview(raw)[3:]):
        assert _result(lambda b=buffer: compiled.decode_command(b)) == _result(
            lambda b=buffer: python.decode_command(b)
        )


GOOD = encode_request(1, 7, affected_sop_class_uid=MR, affected_sop_instance_uid="1.2.3")


@pytest.mark.parametrize(
    "buffer",
    [
        memoryview(GOOD).cast("b"),  # signed bytes: numbers come out negative
        memoryview(GOOD).cast("H"),  # two-byte items
        memoryview(GOOD)[::2],  # strided
        memoryview(GOOD).cast("B", (len(GOOD) // 2, 2)),  # two dimensions
        "not a buffer",
        None,
    ],
    ids=["signed", "wide", "strided", "2d", "str", "none"],
)
def test_buffers_off_the_fast_path_give_the_references_answer(buffer: object) -> None:
    python, compiled = both()
    assert _result(lambda: compiled.decode_command(buffer)) == _result(
        lambda: python.decode_command(buffer)
    )


@pytest.mark.parametrize(
    ("numbers", "texts"),
    [
        ((0x8001, 1, 0x10000), (MR, "1.2", None)),  # Status out of range: struct.error
        ((-1, 1, 0), (MR, "1.2", None)),
        ((0x8001, 1.0, 0), (MR, "1.2", None)),  # not an integer
        ((0x8001, True, Status.SUCCESS), (MR, "1.2", None)),  # int subclasses pack
        ((0x8001, 1, 0), (b"1.2", "1.2", None)),  # bytes, not str
        ((0x8001, 1, 0), (MR, "1.2\u20ac", None)),  # past Latin-1: "?"
        ((0x8001, 1, 0), (MR, "1.2\u00e9", "d\u00e9j\u00e0 vu")),  # comment: ASCII "?"
        ((0x8001, 1, 0), (MR, "1.2", "")),  # an empty comment is left out
        ((0x8001, 1, 0), (MR, "1.2", 5)),  # not text
        ((0x8001, 1, 0), (MR, "", "x" * 200)),  # empty UID, capped comment
    ],
)
def test_arguments_off_the_fast_path_give_the_references_answer(
    numbers: tuple[object, ...], texts: tuple[object, ...]
) -> None:
    python, compiled = both()
    arguments = dict(
        zip(
            ("affected_sop_class_uid", "affected_sop_instance_uid", "error_comment"),
            texts,
            strict=True,
        )
    )
    assert _result(lambda: compiled.encode_response(*numbers, **arguments)) == _result(
        lambda: python.encode_response(*numbers, **arguments)
    )


def test_the_receiver_uses_the_compiled_codec_where_built() -> None:
    from oxidicom.dimse import assembler, commands

    compiled = codec_of("compiled")  # skips where not built or not wanted
    assert commands.decode_command is compiled.decode_command
    assert commands.encode_response is compiled.encode_response
    assert assembler.decode_command is compiled.decode_command


def test_errors_are_the_references_own_type() -> None:
    _, compiled = both()
    with pytest.raises(CommandError, match=r"element \(0008,0018\) is not in group 0000"):
        compiled.decode_command(struct.pack("<HHI", 8, 0x18, 2) + b"1\x00")
