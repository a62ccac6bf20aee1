"""What the Upper Layer sends for a DIMSE message, on both twins (tests/ul/conftest.py):
one PDU of one PDV for a response that fits the peer's maximum, PDVs split to it
otherwise, and everything queued leaving in one write."""

from __future__ import annotations

import struct

import pytest

from oxidicom.ul.fsm import State
from tests.ul._helpers import new_sta6, new_sta8, split_pdus

RESPONSE = bytes(range(256)) * 3 + b"\x01\x02"  # 770 bytes, an even command set


def _pdvs(stream: bytes) -> list[tuple[int, int, bytes]]:
    """(context, message control header, data) of every PDV of every P-DATA-TF."""
    found = []
    for pdu in split_pdus(stream):
        assert pdu[0] == 0x04, pdu[:1]
        body = pdu[6:]
        assert len(body) == struct.unpack(">I", pdu[2:6])[0]
        while body:
            (length,) = struct.unpack(">I", body[:4])
            found.append((body[4], body[5], body[6 : 4 + length]))
            body = body[4 + length :]
    return found


@pytest.mark.parametrize("context_id", [1, 255])
def test_a_response_is_one_pdu_of_one_last_command_pdv(context_id: int) -> None:
    conn = new_sta6(peer_max=16384)
    conn.send_message(context_id, RESPONSE)
    sent = conn.data_to_send()
    assert sent == bytes([4, 0]) + struct.pack(">IIBB", 776, 772, context_id, 3) + RESPONSE
    assert conn.data_to_send() == b""  # nothing is sent twice


@pytest.mark.parametrize("peer_max", [0, None, 776, 777, 2**32 - 1])
def test_a_response_within_the_peer_maximum_is_not_split(peer_max: int | None) -> None:
    conn = new_sta6(peer_max=peer_max)
    conn.send_message(3, RESPONSE)
    assert _pdvs(conn.data_to_send()) == [(3, 3, RESPONSE)]


@pytest.mark.parametrize("peer_max", [1, 6, 7, 100, 775])
def test_a_response_beyond_the_peer_maximum_is_split_to_it(peer_max: int) -> None:
    conn = new_sta6(peer_max=peer_max)
    conn.send_message(1, RESPONSE)
    pdvs = _pdvs(conn.data_to_send())
    step = max(peer_max - 6, 1)
    assert [len(data) for _, _, data in pdvs[:-1]] == [step] * (len(pdvs) - 1)
    assert b"".join(data for _, _, data in pdvs) == RESPONSE
    assert [control for _, control, _ in pdvs] == [1] * (len(pdvs) - 1) + [3]


def test_a_command_and_its_data_set_and_two_messages_leave_in_one_write() -> None:
    conn = new_sta6(peer_max=16384)
    conn.send_message(1, RESPONSE, b"\x08\x00" * 10)
    conn.send_message(1, bytearray(RESPONSE))
    assert _pdvs(conn.data_to_send()) == [
        (1, 3, RESPONSE),
        (1, 2, b"\x08\x00" * 10),
        (1, 3, RESPONSE),
    ]


def test_a_message_outside_sta6_goes_through_the_state_machine() -> None:
    conn = new_sta8()  # the peer asked to release: Evt9 in Sta8 is still allowed (DT-1)
    conn.send_message(1, RESPONSE)
    assert conn.state is State.STA8
    assert _pdvs(conn.data_to_send()) == [(1, 3, RESPONSE)]


def test_a_context_id_beyond_one_byte_fails_as_the_reference_does() -> None:
    conn = new_sta6()
    with pytest.raises(struct.error):
        conn.send_message(256, RESPONSE)
    assert conn.data_to_send() == b""
