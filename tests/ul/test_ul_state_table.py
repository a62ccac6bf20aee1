"""PS3.8 Table 9-10, acceptor columns: one pure test per cell that matters, plus timers.

No sockets: bytes and time go in, events and bytes come out.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.ul import pdu as ul
from oxidicom.ul.connection import MAX_CONTROL_PDU_LENGTH, Connection
from oxidicom.ul.constants import AbortReason, AbortSource, RejectResult, RejectSource
from oxidicom.ul.events import (
    AbortSent,
    AssociationRequested,
    ConnectionClosed,
    DataFragment,
    PeerAborted,
    ReleaseRequested,
    TimedOut,
)
from oxidicom.ul.fsm import TRANSITIONS, Action, Evt, InvalidLocalPrimitive, State, transition
from tests.ul._helpers import (
    abort_pdus,
    drain,
    make_ac,
    make_rq,
    new_sta3,
    new_sta6,
    new_sta8,
    new_sta13,
    pdata,
    split_pdus,
)

USER_ABORT = ul.encode(ul.Abort(AbortSource.SERVICE_USER, AbortReason.NOT_SPECIFIED))


def provider_abort(reason: AbortReason) -> bytes:
    return ul.encode(ul.Abort(AbortSource.SERVICE_PROVIDER, reason))


RQ = ul.encode(make_rq())
AC = ul.encode(make_ac(make_rq()))
RJ = ul.encode(ul.AssociateRJ(RejectResult.PERMANENT, RejectSource.SERVICE_USER, 1))
DATA = pdata((1, True, True, b"\x00" * 10))
RELEASE_RQ = ul.encode(ul.ReleaseRQ())
RELEASE_RP = ul.encode(ul.ReleaseRP())
ABORT = ul.encode(ul.Abort(AbortSource.SERVICE_USER, AbortReason.NOT_SPECIFIED))
UNKNOWN_TYPE = b"\x09\x00\x00\x00\x00\x04\x00\x00\x00\x00"
#: An A-RELEASE-RQ with a 3-byte body: PS3.8 9.3.6 says 4.
MALFORMED = b"\x05\x00\x00\x00\x00\x03\x00\x00\x00"

OTHER_THAN_RQ = {
    "A-ASSOCIATE-AC": AC,
    "A-ASSOCIATE-RJ": RJ,
    "P-DATA-TF": DATA,
    "A-RELEASE-RQ": RELEASE_RQ,
    "A-RELEASE-RP": RELEASE_RP,
    "unknown PDU type": UNKNOWN_TYPE,
    "malformed": MALFORMED,
    "garbage": b"\xff" * 10,
}


# -- the table as data ----------------------------------------------------------------


def test_table_only_mentions_acceptor_states():
    assert {s for s, _ in TRANSITIONS} == set(State)


def test_every_peer_event_has_a_cell_in_every_reading_state():
    peer_events = {Evt.EVT3, Evt.EVT4, Evt.EVT6, Evt.EVT10, Evt.EVT12, Evt.EVT13, Evt.EVT16}
    peer_events |= {Evt.EVT17, Evt.EVT19}
    for state in (State.STA2, State.STA3, State.STA6, State.STA8, State.STA13):
        for event in peer_events:
            assert (state, event) in TRANSITIONS, (state, event)


def test_missing_cell_is_a_local_programming_error():
    with pytest.raises(InvalidLocalPrimitive):
        transition(State.STA2, Evt.EVT9)
    conn = Connection(max_pdu_length=16384)
    with pytest.raises(InvalidLocalPrimitive):
        conn.send_message(1, b"\x00")
    with pytest.raises(InvalidLocalPrimitive):
        conn.release()


def test_table_cells_match_ps3_8():
    # A few cells spelled out from PS3.8 Table 9-10.
    assert transition(State.STA2, Evt.EVT6) == (Action.AE_6, State.STA3)
    assert transition(State.STA2, Evt.EVT16) == (Action.AA_2, State.STA1)
    assert transition(State.STA6, Evt.EVT12) == (Action.AR_2, State.STA8)
    assert transition(State.STA8, Evt.EVT14) == (Action.AR_4, State.STA13)
    assert transition(State.STA6, Evt.EVT16) == (Action.AA_3, State.STA1)
    assert transition(State.STA13, Evt.EVT17) == (Action.AR_5, State.STA1)


# -- Sta2: waiting for A-ASSOCIATE-RQ -------------------------------------------------


def test_sta2_starts_artim_on_connect():
    conn = Connection(max_pdu_length=16384, artim_timeout=30, now=100.0)
    assert conn.state is State.STA2
    assert conn.get_timer() == 130.0
    assert conn.next_event() is None
    assert conn.data_to_send() == b""


def test_sta2_associate_rq():
    conn = Connection(max_pdu_length=16384, now=5.0)
    conn.receive_data(RQ, 6.0)
    assert drain(conn) == [AssociationRequested(make_rq())]
    assert conn.state is State.STA3
    assert conn.get_timer() is None  # AE-6 stops ARTIM
    assert conn.peer_max_pdu_length == 16384
    assert conn.data_to_send() == b""


@pytest.mark.parametrize("name", list(OTHER_THAN_RQ))
def test_sta2_anything_else_is_aa1(name):
    conn = Connection(max_pdu_length=16384, artim_timeout=30, now=0.0)
    conn.receive_data(OTHER_THAN_RQ[name], 1.0)
    events = drain(conn)
    assert len(events) == 1 and isinstance(events[0], AbortSent)
    assert (events[0].source, events[0].reason) == (
        AbortSource.SERVICE_USER,
        AbortReason.NOT_SPECIFIED,
    )
    assert conn.state is State.STA13
    assert conn.data_to_send() == USER_ABORT
    assert conn.get_timer() == 31.0  # AA-1 (re)starts ARTIM
    assert not conn.should_close


def test_sta2_abort_closes_without_reply():
    conn = Connection(max_pdu_length=16384)
    conn.receive_data(ABORT, 1.0)
    assert drain(conn) == [PeerAborted(0, 0), ConnectionClosed()]
    assert conn.state is State.STA1 and conn.should_close
    assert conn.data_to_send() == b""
    assert conn.get_timer() is None


def test_sta2_eof():
    conn = Connection(max_pdu_length=16384)
    conn.receive_eof()
    assert drain(conn) == [ConnectionClosed()]
    assert conn.state is State.STA1


def test_sta2_artim_expiry():
    conn = Connection(max_pdu_length=16384, artim_timeout=30, now=10.0)
    conn.handle_timer(39.999)
    assert drain(conn) == [] and conn.state is State.STA2
    conn.handle_timer(40.0)
    assert drain(conn) == [TimedOut("ARTIM"), ConnectionClosed()]
    assert conn.should_close and conn.state is State.STA1
    assert conn.data_to_send() == b""
    assert conn.get_timer() is None


def test_sta2_artim_is_not_extended_by_a_partial_rq():
    conn = Connection(max_pdu_length=16384, artim_timeout=30, now=0.0)
    for second in range(1, 30):
        conn.receive_data(RQ[second - 1 : second], float(second))
        assert drain(conn) == []
    assert conn.get_timer() == 30.0
    conn.handle_timer(30.0)
    assert drain(conn) == [TimedOut("ARTIM"), ConnectionClosed()]


def test_sta2_local_abort_closes():
    # A shell shutting down aborts every connection, including one still in Sta2.
    conn = Connection(max_pdu_length=16384)
    conn.abort()
    assert drain(conn) == [ConnectionClosed()]
    assert conn.state is State.STA1 and conn.should_close
    assert conn.data_to_send() == b""


# -- Sta3: the local user decides ----------------------------------------------------


@pytest.mark.parametrize("raw", [RQ, AC, RJ, DATA, RELEASE_RQ, RELEASE_RP])
def test_sta3_any_pdu_is_unexpected(raw):
    conn = new_sta3()
    conn.receive_data(raw, 1.0)
    assert [type(e) for e in drain(conn)] == [AbortSent]
    assert conn.state is State.STA13
    assert conn.data_to_send() == provider_abort(AbortReason.UNEXPECTED_PDU)


def test_sta3_accept():
    conn = new_sta3(now=0.0)
    conn.accept(make_ac(make_rq()))
    assert conn.data_to_send() == AC
    assert conn.state is State.STA6


def test_sta3_reject_then_eof():
    conn = new_sta3(artim_timeout=30)
    conn.reject(ul.AssociateRJ(RejectResult.PERMANENT, RejectSource.SERVICE_USER, 7))
    assert conn.data_to_send() == b"\x03\x00\x00\x00\x00\x04\x00\x01\x01\x07"
    assert conn.state is State.STA13
    assert conn.get_timer() == 30.0  # AE-8 starts ARTIM
    conn.receive_eof()
    assert drain(conn) == [ConnectionClosed()]
    assert conn.state is State.STA1


def test_sta3_local_abort_and_peer_abort_and_eof():
    conn = new_sta3()
    conn.abort()
    assert conn.data_to_send() == USER_ABORT and conn.state is State.STA13
    conn = new_sta3()
    conn.receive_data(ABORT, 1.0)
    assert drain(conn) == [PeerAborted(0, 0), ConnectionClosed()]
    conn = new_sta3()
    conn.receive_eof()
    assert drain(conn) == [ConnectionClosed()] and conn.state is State.STA1


# -- Sta6: data transfer --------------------------------------------------------------


@pytest.mark.parametrize("raw", [RQ, AC, RJ, RELEASE_RP], ids=["RQ", "AC", "RJ", "RP"])
def test_sta6_unexpected_pdu_is_aa8(raw):
    conn = new_sta6()
    conn.receive_data(raw, 1.0)
    events = drain(conn)
    assert len(events) == 1
    assert (events[0].source, events[0].reason) == (
        AbortSource.SERVICE_PROVIDER,
        AbortReason.UNEXPECTED_PDU,
    )
    assert conn.state is State.STA13
    assert conn.data_to_send() == provider_abort(AbortReason.UNEXPECTED_PDU)


def test_sta6_unknown_pdu_type():
    conn = new_sta6()
    conn.receive_data(UNKNOWN_TYPE[:6], 1.0)  # the header alone decides
    assert [e.reason for e in drain(conn)] == [AbortReason.UNRECOGNIZED_PDU]
    assert conn.data_to_send() == provider_abort(AbortReason.UNRECOGNIZED_PDU)
    assert conn.state is State.STA13


MALFORMED_IN_STA6 = {
    "release-3-bytes": MALFORMED,
    # A P-DATA-TF too short to hold a PDV item header.
    "pdata-3-bytes": b"\x04\x00\x00\x00\x00\x03\x00\x00\x00",
    # A PDV claiming 7 data bytes where the PDU has 4 left.
    "pdv-overrun": b"\x04\x00\x00\x00\x00\x0a" + b"\x00\x00\x00\x09\x01\x03" + b"abcd",
    # A PDV item length of 1: shorter than its own context ID and control header.
    "pdv-length-1": b"\x04\x00\x00\x00\x00\x07" + b"\x00\x00\x00\x01\x01\x03" + b"\x00",
    # One good PDV, then 2 bytes that cannot be a PDV item header.
    "pdv-tail": b"\x04\x00\x00\x00\x00\x0a" + b"\x00\x00\x00\x04\x01\x03ab" + b"\x00\x00",
    # An A-ASSOCIATE-AC whose body is shorter than its 68-byte fixed part.
    "ac-short": b"\x02\x00\x00\x00\x00\x10" + b"\x00" * 16,
}


@pytest.mark.parametrize("name", list(MALFORMED_IN_STA6))
def test_sta6_malformed_pdu_is_invalid_parameter_value(name):
    conn = new_sta6()
    conn.receive_data(MALFORMED_IN_STA6[name], 1.0)
    all_events = drain(conn)
    data = [bytes(e.data) for e in all_events if isinstance(e, DataFragment)]
    # Only the well-formed PDV before the bad tail is handed on.
    assert data == ([b"ab"] if name == "pdv-tail" else [])
    events = [e for e in all_events if not isinstance(e, DataFragment)]
    assert events[0] == AbortSent(
        AbortSource.SERVICE_PROVIDER, AbortReason.INVALID_PDU_PARAMETER_VALUE, events[0].detail
    )
    assert len(events) == 1
    assert conn.state is State.STA13
    assert conn.data_to_send() == provider_abort(AbortReason.INVALID_PDU_PARAMETER_VALUE)
    # Framing is lost: later bytes are not read, EOF still closes.
    conn.receive_data(RELEASE_RQ, 2.0)
    assert drain(conn) == []
    conn.receive_eof()
    assert drain(conn) == [ConnectionClosed()]


def test_sta6_peer_abort():
    conn = new_sta6()
    conn.receive_data(
        ul.encode(ul.Abort(AbortSource.SERVICE_PROVIDER, AbortReason.UNEXPECTED_PDU)), 1
    )
    assert drain(conn) == [PeerAborted(2, 2), ConnectionClosed()]
    assert conn.should_close and conn.state is State.STA1
    assert conn.data_to_send() == b""


def test_sta6_peer_abort_with_out_of_range_codes():
    conn = new_sta6()
    conn.receive_data(b"\x07\x00\x00\x00\x00\x04\x00\x00\x09\x63", 1)
    assert drain(conn) == [PeerAborted(9, 99), ConnectionClosed()]


def test_sta6_release():
    conn = new_sta6(artim_timeout=30)
    conn.receive_data(RELEASE_RQ, 2.0)
    assert drain(conn) == [ReleaseRequested()]
    assert conn.state is State.STA8
    assert conn.data_to_send() == b""
    conn.release()
    assert conn.data_to_send() == RELEASE_RP
    assert conn.state is State.STA13
    assert conn.get_timer() == 32.0  # AR-4 starts ARTIM
    conn.receive_eof()
    assert drain(conn) == [ConnectionClosed()]
    assert conn.state is State.STA1


def test_sta6_local_abort():
    conn = new_sta6()
    conn.abort()
    [event] = drain(conn)
    assert (event.source, event.reason) == (AbortSource.SERVICE_USER, AbortReason.NOT_SPECIFIED)
    assert conn.data_to_send() == USER_ABORT
    assert conn.state is State.STA13


def test_sta6_pdata_and_empty_pdv():
    conn = new_sta6()
    conn.receive_data(pdata((3, True, False, b""), (3, True, True, b"cmd")), 1.0)
    events = drain(conn)
    assert [(e.context_id, e.is_command, e.is_last, bytes(e.data)) for e in events] == [
        (3, True, False, b""),
        (3, True, True, b"cmd"),
    ]
    assert conn.state is State.STA6 and conn.data_to_send() == b""


def test_sta6_reserved_control_bits_are_not_tested():
    """PS3.8 Annex E.2: bits 2-7 are reserved, sent as 0 and not tested on receipt."""
    conn = new_sta6()
    raw = bytearray(pdata((1, True, True, b"x")))
    raw[11] |= 0xFC
    conn.receive_data(bytes(raw), 1.0)
    events = drain(conn)
    assert [(e.context_id, e.is_command, e.is_last, bytes(e.data)) for e in events] == [
        (1, True, True, b"x")
    ]
    assert conn.state is State.STA6 and conn.data_to_send() == b""


def test_sta6_eof_right_after_buffered_data():
    conn = new_sta6()
    conn.receive_data(pdata((1, True, True, b"abc")) + RELEASE_RQ, 1.0)
    conn.receive_eof()
    events = drain(conn)
    assert [type(e) for e in events] == [DataFragment, ReleaseRequested, ConnectionClosed]
    assert bytes(events[0].data) == b"abc"
    assert conn.state is State.STA1


def test_sta6_eof_inside_a_pdu():
    conn = new_sta6()
    conn.receive_data(pdata((1, False, True, b"abcdef"))[:-2], 1.0)
    conn.receive_eof()
    events = drain(conn)
    assert [type(e) for e in events] == [DataFragment, ConnectionClosed]
    assert bytes(events[0].data) == b"abcd" and not events[0].is_last


# -- Sta8: waiting for the local release response ------------------------------------


def test_sta8_pdata_received_is_aa8():
    conn = new_sta8()
    conn.receive_data(DATA, 2.0)
    assert [(e.source, e.reason) for e in drain(conn)] == [
        (AbortSource.SERVICE_PROVIDER, AbortReason.UNEXPECTED_PDU)
    ]
    assert conn.state is State.STA13
    assert conn.data_to_send() == provider_abort(AbortReason.UNEXPECTED_PDU)


def test_sta8_second_release_rq_is_aa8():
    conn = new_sta8()
    conn.receive_data(RELEASE_RQ, 2.0)
    assert [e.reason for e in drain(conn)] == [AbortReason.UNEXPECTED_PDU]


def test_sta8_local_pdata_is_allowed_ar7():
    conn = new_sta8()
    conn.send_message(1, b"response")
    assert conn.state is State.STA8
    assert ul.parse_pdu(conn.data_to_send()) == ul.PDataTF(
        (ul.PresentationDataValue(1, True, True, b"response"),)
    )
    conn.release()
    assert conn.data_to_send() == RELEASE_RP


def test_sta8_peer_abort_and_eof():
    conn = new_sta8()
    conn.receive_data(ABORT, 2.0)
    assert drain(conn) == [PeerAborted(0, 0), ConnectionClosed()]
    conn = new_sta8()
    conn.receive_eof()
    assert drain(conn) == [ConnectionClosed()]


# -- Sta13: waiting for the transport to close ---------------------------------------


@pytest.mark.parametrize(
    "raw", [RQ, AC, RJ, DATA, RELEASE_RQ, RELEASE_RP, UNKNOWN_TYPE], ids=lambda r: f"{r[0]:02x}"
)
def test_sta13_pdus_are_ignored(raw):
    conn = new_sta13()
    conn.receive_data(raw, 3.0)
    assert drain(conn) == []
    assert conn.state is State.STA13
    assert conn.data_to_send() == b""


def test_sta13_abort_closes():
    conn = new_sta13()
    conn.receive_data(DATA + ABORT, 3.0)
    assert drain(conn) == [PeerAborted(0, 0), ConnectionClosed()]
    assert conn.should_close and conn.state is State.STA1
    assert conn.get_timer() is None


def test_sta13_eof():
    conn = new_sta13()
    conn.receive_eof()
    assert drain(conn) == [ConnectionClosed()]
    assert conn.state is State.STA1
    assert conn.get_timer() is None
    # Sta1 is final: nothing more comes out, whatever arrives.
    conn.receive_data(RQ, 4.0)
    conn.receive_eof()
    assert drain(conn) == []


def test_sta13_artim_expiry():
    conn = new_sta6(artim_timeout=30, now=0.0)
    conn.receive_data(RQ, 10.0)
    drain(conn)
    assert conn.state is State.STA13
    assert conn.get_timer() == 40.0
    conn.handle_timer(40.0)
    assert drain(conn) == [TimedOut("ARTIM"), ConnectionClosed()]
    assert conn.should_close


def test_sta13_local_abort_closes():
    conn = new_sta13()
    conn.abort()
    assert drain(conn) == [ConnectionClosed()]
    assert conn.should_close and conn.data_to_send() == b""


# -- the idle timer (Sta6) ------------------------------------------------------------


def test_idle_timeout_fires_when_no_pdu_completes():
    conn = new_sta6(idle_timeout=60, now=0.0)
    assert conn.get_timer() == 60.0
    conn.handle_timer(59.0)
    assert drain(conn) == []
    conn.handle_timer(60.0)
    events = drain(conn)
    assert events[0] == TimedOut("idle")
    assert isinstance(events[1], AbortSent) and events[1].source is AbortSource.SERVICE_USER
    assert conn.data_to_send() == USER_ABORT
    assert conn.state is State.STA13


def test_idle_timeout_is_not_extended_by_a_trickle():
    conn = new_sta6(idle_timeout=60, now=0.0)
    raw = pdata((1, False, True, bytes(200)))
    for second in range(1, 60):
        conn.receive_data(raw[second - 1 : second], float(second))
        drain(conn)
        assert conn.get_timer() == 60.0
    conn.handle_timer(60.0)
    assert drain(conn)[0] == TimedOut("idle")
    assert abort_pdus(conn.data_to_send()) == [ul.Abort(AbortSource.SERVICE_USER, 0)]


def test_idle_timer_restarts_when_a_pdu_completes():
    conn = new_sta6(idle_timeout=60, now=0.0)
    raw = pdata((1, True, True, b"command"))
    conn.receive_data(raw[:5], 30.0)
    drain(conn)
    assert conn.get_timer() == 60.0
    conn.receive_data(raw[5:], 50.0)
    drain(conn)
    assert conn.get_timer() == 110.0
    conn.local_activity(80.0)
    assert conn.get_timer() == 140.0
    conn.local_activity(70.0)  # never moves back
    assert conn.get_timer() == 140.0


def test_no_idle_timer_when_disabled():
    conn = new_sta6(idle_timeout=None)
    assert conn.get_timer() is None
    conn.handle_timer(1e9)
    assert drain(conn) == []


# -- maximum PDU length: strict and lenient ------------------------------------------


def pdata_header(length: int) -> bytes:
    return b"\x04\x00" + struct.pack(">I", length)


def test_strict_refuses_pdata_over_our_maximum_from_the_header():
    conn = new_sta6(max_pdu_length=4096, strict=True)
    conn.receive_data(pdata_header(4097), 1.0)
    [event] = drain(conn)
    assert (event.source, event.reason) == (
        AbortSource.SERVICE_PROVIDER,
        AbortReason.INVALID_PDU_PARAMETER_VALUE,
    )
    assert conn.data_to_send() == provider_abort(AbortReason.INVALID_PDU_PARAMETER_VALUE)


def test_strict_accepts_exactly_our_maximum():
    conn = new_sta6(max_pdu_length=4096, strict=True)
    conn.receive_data(pdata((1, False, True, bytes(4096 - 6))), 1.0)
    events = drain(conn)
    assert [len(e.data) for e in events] == [4090] and events[0].is_last


def test_lenient_accepts_up_to_the_hard_cap():
    conn = new_sta6(max_pdu_length=4096, pdu_hard_cap=8192)
    conn.receive_data(pdata((1, False, True, bytes(8192 - 6))), 1.0)
    events = drain(conn)
    assert sum(len(e.data) for e in events) == 8186 and events[-1].is_last
    assert conn.state is State.STA6 and conn.data_to_send() == b""
    conn.receive_data(pdata_header(8193), 2.0)
    assert [e.reason for e in drain(conn)] == [AbortReason.INVALID_PDU_PARAMETER_VALUE]
    assert conn.state is State.STA13


def test_huge_control_pdu_refused_from_the_header():
    conn = Connection(max_pdu_length=16384)
    conn.receive_data(b"\x01\x00" + struct.pack(">I", MAX_CONTROL_PDU_LENGTH + 1), 1.0)
    assert [type(e) for e in drain(conn)] == [AbortSent]
    assert conn.data_to_send() == USER_ABORT  # Sta2: AA-1
    assert conn.buffered == 0


# -- sending: split by the peer's maximum ---------------------------------------------


def reassemble(raw: bytes, peer_max: int) -> tuple[bytes, bytes, list[ul.PresentationDataValue]]:
    pdvs = []
    for pdu in split_pdus(raw):
        assert pdu[0] == 0x04
        if peer_max:
            assert struct.unpack_from(">I", pdu, 2)[0] <= peer_max
        values = ul.parse_pdu(pdu).values
        assert len(values) == 1
        pdvs.extend(values)
    command = b"".join(v.data for v in pdvs if v.is_command)
    dataset = b"".join(v.data for v in pdvs if not v.is_command)
    return command, dataset, pdvs


@settings(deadline=None, max_examples=80)
@given(
    peer_max=st.sampled_from([0, 7, 8, 100, 4096, 16384]) | st.integers(7, 3000),
    command=st.binary(min_size=1, max_size=400),
    dataset=st.none() | st.binary(max_size=6000),
    context_id=st.integers(0, 127).map(lambda n: 2 * n + 1),
)
def test_send_message_splits_by_the_peer_maximum(peer_max, command, dataset, context_id):
    conn = new_sta6(peer_max=peer_max or None)
    assert conn.peer_max_pdu_length == peer_max
    conn.send_message(context_id, command, dataset)
    got_command, got_dataset, pdvs = reassemble(conn.data_to_send(), peer_max)
    assert got_command == command
    assert got_dataset == (dataset or b"")
    assert {v.context_id for v in pdvs} == {context_id}
    # Command PDVs first; is_last on exactly the last PDV of each part.
    kinds = [v.is_command for v in pdvs]
    assert kinds == sorted(kinds, reverse=True)
    commands = [v for v in pdvs if v.is_command]
    assert [v.is_last for v in commands] == [False] * (len(commands) - 1) + [True]
    data = [v for v in pdvs if not v.is_command]
    if dataset is None:
        assert data == []
    else:
        assert [v.is_last for v in data] == [False] * (len(data) - 1) + [True]
    if peer_max:
        # Nothing wasted: every PDU but each part's last is full.
        for v in pdvs:
            if not v.is_last:
                assert len(v.data) + 6 == peer_max


def test_send_message_with_empty_dataset_sends_one_empty_last_pdv():
    conn = new_sta6()
    conn.send_message(1, b"cmd", b"")
    _, _, pdvs = reassemble(conn.data_to_send(), 16384)
    assert [(v.is_command, v.is_last, v.data) for v in pdvs] == [
        (True, True, b"cmd"),
        (False, True, b""),
    ]


def test_send_message_reads_back_through_a_connection():
    conn = new_sta6(peer_max=4096)
    conn.send_message(5, bytes(range(256)) * 2, bytes(10_000))
    wire = conn.data_to_send()
    reader = new_sta6()
    reader.receive_data(wire, 1.0)
    events = drain(reader)
    assert b"".join(bytes(e.data) for e in events if e.is_command) == bytes(range(256)) * 2
    assert sum(len(e.data) for e in events if not e.is_command) == 10_000
    assert [e.is_last for e in events].count(True) == 2
