"""Hypothesis: arbitrary bytes, fed whole or split anywhere, give only events.

``next_event`` must never raise: the parsers' ``ULProtocolError`` becomes one A-ABORT
and Sta13, and any other exception is a bug. The byte strategies are biased towards
PDU-shaped input (plausible types and lengths) so that the reader gets past the
6-byte header often.
"""

from __future__ import annotations

import contextlib
import itertools
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.ul import pdu as ul
from oxidicom.ul.connection import Connection
from oxidicom.ul.constants import PDUType
from oxidicom.ul.errors import ULProtocolError
from oxidicom.ul.events import AbortSent, AssociationRequested, ConnectionClosed, Event
from oxidicom.ul.fsm import State
from tests.ul._helpers import abort_pdus, new_sta6, split_pdus
from tests.vectors import all_vectors, vector

GOLDEN = [v.raw for v in all_vectors()]


@st.composite
def pdu_shaped(draw: st.DrawFn) -> bytes:
    pdu_type = draw(st.sampled_from([*range(1, 8), 0, 8, 0x50, 0xFF]))
    body = draw(st.binary(max_size=80))
    length = draw(st.sampled_from([len(body), len(body)]) | st.integers(0, 100))
    return struct.pack(">BxI", pdu_type, length) + body


@st.composite
def mutated_golden(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from([g for g in GOLDEN if len(g) < 1000])))
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(raw) - 1))
        raw[index] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(raw)))
    return bytes(raw[:cut] if draw(st.booleans()) else raw)


garbage = st.lists(st.binary(max_size=40) | pdu_shaped() | mutated_golden(), max_size=5).map(
    b"".join
)
cuts = st.lists(st.integers(min_value=1, max_value=2000), max_size=12)


def feed(conn: Connection, data: bytes, cut_points: list[int], eof: bool) -> list[Event]:
    """Feed ``data`` in pieces, draining after each; check the single-abort rule."""
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cut_points)})
    events: list[Event] = []
    sent = b""
    for a, b in itertools.pairwise(bounds):
        conn.receive_data(data[a:b], 1.0)
        while (event := conn.next_event()) is not None:
            events.append(event)
            if isinstance(event, AbortSent):
                # Right after a protocol error: Sta13, and exactly one A-ABORT to send.
                assert conn.state is State.STA13
                out = conn.data_to_send()
                assert len(abort_pdus(out)) == 1
                sent += out
        sent += conn.data_to_send()
    if eof:
        conn.receive_eof()
        while (event := conn.next_event()) is not None:
            events.append(event)
        assert conn.state is State.STA1
        assert isinstance(events[-1], ConnectionClosed)
    sent += conn.data_to_send()
    # At most one A-ABORT, ever; and nothing else is sent by a connection left alone.
    assert sum(isinstance(e, AbortSent) for e in events) <= 1
    assert sent == b"" or len(abort_pdus(sent)) == 1
    assert sum(isinstance(e, ConnectionClosed) for e in events) <= 1
    return events


@settings(deadline=None, max_examples=250)
@given(data=garbage, cut_points=cuts, eof=st.booleans())
def test_arbitrary_bytes_in_sta2(data, cut_points, eof):
    conn = Connection(max_pdu_length=16384)
    events = feed(conn, data, cut_points, eof)
    # Nobody accepted: at most the one A-ASSOCIATE indication.
    assert sum(isinstance(e, AssociationRequested) for e in events) <= 1


@settings(deadline=None, max_examples=250)
@given(data=garbage, cut_points=cuts, eof=st.booleans(), strict=st.booleans())
def test_arbitrary_bytes_after_accept(data, cut_points, eof, strict):
    conn = new_sta6(max_pdu_length=512, strict=strict, pdu_hard_cap=1024)
    feed(conn, data, cut_points, eof)


@settings(deadline=None, max_examples=150)
@given(data=garbage, cut_points=cuts)
def test_same_events_whole_or_split(data, cut_points):
    """Chunking changes fragment boundaries only, never what happens."""

    def summary(events: list[Event]) -> list:
        out: list = []
        data_bytes = b""
        for e in events:
            if type(e).__name__ == "DataFragment":
                data_bytes += bytes(e.data)
                if e.is_last:
                    out.append(("data", data_bytes))
                    data_bytes = b""
            else:
                out.append(type(e).__name__)
        return [*out, ("tail", data_bytes)]

    whole = feed(new_sta6(), data, [], eof=True)
    split = feed(new_sta6(), data, cut_points, eof=True)
    assert summary(whole) == summary(split)


@settings(deadline=None, max_examples=200)
@given(data=st.binary(max_size=300) | mutated_golden())
def test_parsers_raise_only_protocol_errors(data):
    with contextlib.suppress(ULProtocolError):
        ul.parse_pdu(data)
    for pdu_type in PDUType:
        with contextlib.suppress(ULProtocolError):
            ul.parse_body(pdu_type, data)


def test_truncated_golden_rq_then_eof_closes_quietly():
    raw = vector("dcmtk_storescu", 1).raw
    for cut in (1, 5, 6, 7, 74, len(raw) // 2, len(raw) - 1):
        conn = Connection(max_pdu_length=16384)
        events = feed(conn, raw[:cut], [], eof=True)
        assert [type(e) for e in events] == [ConnectionClosed], cut


def test_golden_rq_with_length_field_too_small_aborts():
    raw = vector("dcmtk_echoscu", 1).raw
    short = raw[:2] + struct.pack(">I", len(raw) - 6 - 1) + raw[6:]
    conn = Connection(max_pdu_length=16384)
    events = feed(conn, short, [], eof=False)
    assert [type(e) for e in events] == [AbortSent]
    assert conn.state is State.STA13


def test_golden_rq_with_length_field_too_big_waits_then_closes():
    raw = vector("dcmtk_echoscu", 1).raw
    long = raw[:2] + struct.pack(">I", len(raw) - 6 + 10) + raw[6:]
    conn = Connection(max_pdu_length=16384)
    assert feed(conn, long, [], eof=False) == []
    assert conn.buffered == len(raw) - 6
    # Ten more bytes complete it: trailing zero padding is ten stray bytes -> invalid.
    conn.receive_data(bytes(10), 2.0)
    [event] = [conn.next_event()]
    assert isinstance(event, AbortSent)


def test_golden_pdata_truncated_and_oversized_in_sta6():
    raw = vector("dcmtk_storescu", 18).raw  # the last data set P-DATA-TF, 3054 bytes
    # Cut short, then EOF: the fragments that did arrive, then ConnectionClosed.
    conn = new_sta6()
    events = feed(conn, raw[:1000], [], eof=True)
    assert sum(len(e.data) for e in events[:-1]) == 1000 - 12
    assert not any(e.is_last for e in events[:-1])
    # Length field 1 too small: the PDV overruns the PDU.
    conn = new_sta6()
    short = raw[:2] + struct.pack(">I", len(raw) - 7) + raw[6:]
    events = feed(conn, short, [], eof=False)
    assert [type(e).__name__ for e in events] == ["AbortSent"]
    # Length field 1 too big: the PDV ends one byte before the PDU; 1 byte is no PDV.
    conn = new_sta6()
    long = raw[:2] + struct.pack(">I", len(raw) - 5) + raw[6:] + b"\x00"
    events = feed(conn, long, [], eof=False)
    assert [type(e).__name__ for e in events] == ["DataFragment", "AbortSent"]
    assert events[0].is_last  # the PDV itself was whole


def test_stream_of_every_golden_pdu_in_sta6_never_raises():
    conn = new_sta6()
    wire = b"".join(GOLDEN)
    events = feed(conn, wire, [], eof=True)
    # The first captured PDU is an A-ASSOCIATE-RQ: unexpected in Sta6.
    assert isinstance(events[0], AbortSent) and events[0].reason == 2
    assert split_pdus(wire)[0][0] == 1
