"""Hypothesis: ``parse_pdu(encode(x)) == x`` for every PDU and item, and the bytes agree.

The strategies generate values the wire can represent: AE titles of 1-16 printable
ASCII characters without a backslash or leading/trailing spaces (PS3.5 AE VR; the
parser strips space padding), UIDs of digits and dots without trailing NUL, odd
presentation context IDs 1-255 (PS3.8 9.3.2.2).
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.ul import pdu as ul
from oxidicom.ul.constants import AbortReason, AbortSource, RejectResult, RejectSource

AE_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\")
ae_titles = st.text(AE_CHARS, min_size=1, max_size=16).filter(lambda s: s == s.strip(" "))
uids = st.text("0123456789.", min_size=1, max_size=64)
names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=16)
context_ids = st.integers(min_value=0, max_value=127).map(lambda n: 2 * n + 1)
u8 = st.integers(min_value=0, max_value=255)
u16 = st.integers(min_value=0, max_value=0xFFFF)
u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
small_bytes = st.binary(max_size=64)

role_selections = st.builds(ul.RoleSelection, uids, st.booleans(), st.booleans())
extended = st.builds(ul.ExtendedNegotiation, uids, small_bytes)
common_extended = st.builds(
    ul.CommonExtendedNegotiation, uids, uids, st.lists(uids, max_size=3).map(tuple)
)
user_identity = st.builds(ul.UserIdentity, u8, st.booleans(), small_bytes, small_bytes)

user_information = st.builds(
    ul.UserInformation,
    maximum_length=st.none() | u32,
    implementation_class_uid=st.none() | uids,
    implementation_version_name=st.none() | names,
    asynchronous_operations_window=st.none() | st.builds(ul.AsynchronousOperationsWindow, u16, u16),
    role_selections=st.lists(role_selections, max_size=3).map(tuple),
    extended_negotiations=st.lists(extended, max_size=3).map(tuple),
    common_extended_negotiations=st.lists(common_extended, max_size=2).map(tuple),
    user_identity=st.none() | user_identity,
    user_identity_response=st.none() | small_bytes,
)

contexts_rq = st.builds(
    ul.PresentationContextRQ, context_ids, uids, st.lists(uids, min_size=1, max_size=4).map(tuple)
)
contexts_ac = st.builds(ul.PresentationContextAC, context_ids, u8, uids)

associate_rq = st.builds(
    ul.AssociateRQ,
    called_ae_title=ae_titles,
    calling_ae_title=ae_titles,
    application_context=uids,
    presentation_contexts=st.lists(contexts_rq, max_size=6).map(tuple),
    user_information=user_information,
    protocol_version=u16,
)
associate_ac = st.builds(
    ul.AssociateAC,
    called_ae_title=ae_titles,
    calling_ae_title=ae_titles,
    application_context=uids,
    presentation_contexts=st.lists(contexts_ac, max_size=6).map(tuple),
    user_information=user_information,
    protocol_version=u16,
)
associate_rj = st.builds(
    ul.AssociateRJ, st.sampled_from(RejectResult), st.sampled_from(RejectSource), u8
)
pdvs = st.builds(
    ul.PresentationDataValue, u8, st.booleans(), st.booleans(), st.binary(max_size=300)
)
pdata = st.builds(ul.PDataTF, st.lists(pdvs, min_size=1, max_size=5).map(tuple))
aborts = st.builds(ul.Abort, st.sampled_from(AbortSource), st.sampled_from(AbortReason))
pdus = st.one_of(
    associate_rq,
    associate_ac,
    associate_rj,
    pdata,
    st.just(ul.ReleaseRQ()),
    st.just(ul.ReleaseRP()),
    aborts,
)


@settings(deadline=None, max_examples=300)
@given(pdus)
def test_round_trip_any_pdu(pdu):
    raw = ul.encode(pdu)
    assert ul.parse_pdu(raw) == pdu
    # The header's length is the body's, and a second trip gives the same bytes.
    assert struct.unpack_from(">I", raw, 2)[0] == len(raw) - 6
    assert ul.encode(ul.parse_pdu(raw)) == raw


@settings(deadline=None, max_examples=150)
@given(associate_rq)
def test_round_trip_associate_rq(rq):
    raw = ul.encode(rq)
    assert raw[0] == 0x01
    assert ul.parse_pdu(raw) == rq
    assert ul.parse_body(raw[0], raw[6:]) == rq


@settings(deadline=None, max_examples=150)
@given(associate_ac)
def test_round_trip_associate_ac(ac):
    raw = ul.encode(ac)
    assert raw[0] == 0x02
    assert ul.parse_pdu(raw) == ac


@settings(deadline=None, max_examples=100)
@given(user_information)
def test_round_trip_user_information_alone(info):
    rq = ul.AssociateRQ("A", "B", "1.2", (), info)
    assert ul.parse_pdu(ul.encode(rq)).user_information == info


@settings(deadline=None, max_examples=100)
@given(pdata)
def test_round_trip_pdata_and_pdv_header(p):
    raw = ul.encode(p)
    assert ul.parse_pdata_values(memoryview(raw)[6:]) == p.values
    # encode_pdv_header is the first 6 bytes of each PDV item.
    first = p.values[0]
    header = ul.encode_pdv_header(
        first.context_id, first.is_command, first.is_last, len(first.data)
    )
    assert raw[6:12] == header
    assert header[5] == first.is_command | (first.is_last << 1)


@settings(deadline=None, max_examples=50)
@given(associate_rj, aborts)
def test_round_trip_fixed_size_pdus(rj, abort):
    for pdu in (rj, abort, ul.ReleaseRQ(), ul.ReleaseRP()):
        raw = ul.encode(pdu)
        assert len(raw) == 10
        assert ul.parse_pdu(raw) == pdu


def test_ae_title_is_space_padded_to_16_bytes():
    rq = ul.AssociateRQ("AB", "C" * 16, "1.2", (), ul.UserInformation())
    raw = ul.encode(rq)
    assert raw[10:26] == b"AB" + b" " * 14
    assert raw[26:42] == b"C" * 16


def test_too_long_values_are_refused_by_the_encoder():
    with pytest.raises(ValueError):
        ul.encode(ul.AssociateRQ("X" * 17, "B", "1.2", (), ul.UserInformation()))
    too_big = ul.UserInformation(
        user_identity=ul.UserIdentity(1, False, b"x" * 40000, b"y" * 40000)
    )
    with pytest.raises(ValueError):
        ul.encode(ul.AssociateRQ("A", "B", "1.2", (), too_big))
