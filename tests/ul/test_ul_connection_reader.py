"""The Connection reader on captured client streams: whole, byte by byte, split anywhere.

Like h11's ``test_io.py``: whatever the chunking, the same events come out, PDV data
concatenates to the same bytes, and ``is_last`` is on exactly the right fragment.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.ul import pdu as ul
from oxidicom.ul.events import AbortSent, ConnectionClosed, DataFragment
from tests.ul._helpers import expected_events, make_ac, normalise, run_acceptor, split_pdus
from tests.vectors import load, stream

#: Scenarios whose requestor stream is RQ, P-DATA-TF..., A-RELEASE-RQ.
RELEASING = [
    "dcmtk_echoscu",
    "dcmtk_storescu",
    "pynetdicom_scu_extneg",
    "pynetdicom_scu_to_storescp",
]


def expectation(scenario: str) -> tuple[bytes, list[tuple], list[int]]:
    raw = stream(scenario, "rq")
    pdus = [ul.parse_pdu(r) for r in split_pdus(raw)]
    expected = [*expected_events(pdus), ("ConnectionClosed",)]
    lengths = [len(v.data) for p in pdus if isinstance(p, ul.PDataTF) for v in p.values]
    return raw, expected, lengths


def chunked(raw: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def check(scenario: str, chunks: list[bytes]) -> list:
    raw, expected, lengths = expectation(scenario)
    assert b"".join(chunks) == raw
    events, sent = run_acceptor(chunks)
    assert normalise(events, lengths) == expected
    # We answered: A-ASSOCIATE-AC, then A-RELEASE-RP; never an A-ABORT.
    assert sent[:1] == b"\x02"
    assert sent.endswith(ul.encode(ul.ReleaseRP()))
    return events


@pytest.mark.parametrize("scenario", RELEASING)
def test_whole_stream_in_one_chunk(scenario):
    events = check(scenario, [stream(scenario, "rq")])
    # Fed whole, every PDV comes out as exactly one fragment viewing the input.
    fragments = [e for e in events if isinstance(e, DataFragment)]
    _, _, lengths = expectation(scenario)
    assert [len(f.data) for f in fragments] == lengths
    assert all(isinstance(f.data, memoryview) for f in fragments)


@pytest.mark.parametrize("scenario", RELEASING)
def test_one_pdu_per_chunk(scenario):
    check(scenario, split_pdus(stream(scenario, "rq")))


@pytest.mark.parametrize("scenario", RELEASING)
def test_each_pdu_with_the_next_pdus_first_bytes(scenario):
    raw = stream(scenario, "rq")
    pdus = split_pdus(raw)
    ends = []
    offset = 0
    for pdu in pdus[:-1]:
        offset += len(pdu)
        ends.append(offset)
    for lead in (1, 5, 6, 7, 11, 12):
        check(scenario, chunked(raw, [e + lead for e in ends]))


@pytest.mark.parametrize("scenario", ["dcmtk_echoscu", "pynetdicom_scu_extneg"])
def test_byte_by_byte(scenario):
    raw = stream(scenario, "rq")
    events = check(scenario, [raw[i : i + 1] for i in range(len(raw))])
    # The 68-byte C-ECHO command arrives as one fragment per byte, only the last is_last.
    echo = [e for e in events if isinstance(e, DataFragment) and e.context_id == 1]
    assert len(echo) == 68
    assert [e.is_last for e in echo] == [False] * 67 + [True]


def test_storescu_stream_in_small_chunks():
    # 19.6 KB in 7-byte pieces (a prime, so the cuts drift across every header).
    raw = stream("dcmtk_storescu", "rq")
    events = check("dcmtk_storescu", [raw[i : i + 7] for i in range(0, len(raw), 7)])
    data = [e for e in events if isinstance(e, DataFragment) and not e.is_command]
    assert sum(len(e.data) for e in data) == 16372 + 3042
    assert [e.is_last for e in data].count(True) == 1 and data[-1].is_last


@settings(deadline=None, max_examples=60)
@given(
    scenario=st.sampled_from(RELEASING),
    cuts=st.lists(st.integers(min_value=1, max_value=20_000), max_size=40),
)
def test_random_splits(scenario, cuts):
    raw = stream(scenario, "rq")
    check(scenario, chunked(raw, [c % len(raw) for c in cuts]))


def test_abort_stream():
    raw = stream("dcmtk_echoscu_abort", "rq")
    for chunks in ([raw], [raw[i : i + 3] for i in range(0, len(raw), 3)]):
        events, sent = run_acceptor(chunks)
        pdus = [ul.parse_pdu(r) for r in split_pdus(raw)]
        lengths = [len(v.data) for p in pdus if isinstance(p, ul.PDataTF) for v in p.values]
        # PeerAborted then ConnectionClosed; no reply to the A-ABORT: only our AC went out.
        assert normalise(events, lengths) == [
            ("associate", pdus[0]),
            ("pdv", 1, True, True, pdus[1].values[0].data),
            ("aborted", 0, 0),
            ("ConnectionClosed",),
        ]
        assert sent == ul.encode(make_ac(pdus[0]))


def test_jwt_stream_without_pdata():
    # RQ then A-RELEASE-RQ with nothing in between is a valid (if useless) association.
    raw = stream("dcmtk_storescu_jwt", "rq")
    events, sent = run_acceptor([raw])
    assert [type(e).__name__ for e in events] == [
        "AssociationRequested",
        "ReleaseRequested",
        "ConnectionClosed",
    ]
    assert events[0].request.user_information.user_identity.identity_type == 5
    assert sent.endswith(ul.encode(ul.ReleaseRP()))


def test_bytes_after_release_rq_are_ignored_in_sta13():
    # A peer that pipelines a P-DATA-TF after its A-RELEASE-RQ: once we answered the
    # release we are in Sta13 and PS3.8 Table 9-10 (AA-6) says ignore it.
    raw = stream("dcmtk_echoscu", "rq") + load("dcmtk_echoscu")[2].raw
    events, sent = run_acceptor([raw])
    assert not any(isinstance(e, AbortSent) for e in events)
    assert isinstance(events[-1], ConnectionClosed)
    assert sent.endswith(ul.encode(ul.ReleaseRP()))
