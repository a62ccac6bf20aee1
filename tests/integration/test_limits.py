"""Each limit of the receiver, against the real process, answered as PS3.8 says."""

from __future__ import annotations

import os
import select
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxidicom.dimse.commands import CommandField, encode_request
from oxidicom.scp.acceptance import MAX_PRESENTATION_CONTEXTS
from oxidicom.ul import pdu as ul
from oxidicom.ul.constants import (
    PresentationRejectReason,
    RejectResult,
    RejectSource,
    UserRejectReason,
)
from tests.integration.raw_peer import (
    EXPLICIT_LE,
    MR_STORAGE,
    VERIFICATION,
    RawPeer,
    associate_rq,
    message,
    pdata,
    wait_until_closed,
)
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.test_hostile import STORE_CONTEXTS, instance_bytes

pytestmark = pytest.mark.integration


@pytest.fixture
def tuned(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningReceiver]:
    running = start_receiver(tmp_path, request.param)
    yield running
    assert running.stop() == 0
    assert "Traceback" not in running.log()


def open_sockets(pid: int) -> int:
    """Its sockets (libuv opens /dev/null once per loop with the first connection, as a
    spare descriptor: not one per connection)."""
    links = (os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
    return sum(1 for link in links if link.startswith("socket:"))


@pytest.mark.parametrize("tuned", [{"OXIDICOM_LISTENER_THREADS": "3"}], indirect=True)
def test_a_burst_beyond_the_association_limit_is_rejected_transient(
    tuned: RunningReceiver,
) -> None:
    peers = [RawPeer.connect(tuned.port) for _ in range(8)]
    try:
        for peer in peers:
            peer.send(associate_rq())
        answers = [peer.read_pdu() for peer in peers]
        accepted = [p for p, a in zip(peers, answers, strict=True) if isinstance(a, ul.AssociateAC)]
        rejected = [a for a in answers if not isinstance(a, ul.AssociateAC)]
        assert len(accepted) == 3
        assert (
            rejected
            == [
                ul.AssociateRJ(
                    RejectResult.TRANSIENT,
                    RejectSource.SERVICE_PROVIDER_PRESENTATION,
                    PresentationRejectReason.LOCAL_LIMIT_EXCEEDED,
                )
            ]
            * 5
        )
        for peer in accepted:
            assert peer.c_echo() == 0x0000
            peer.release()
    finally:
        for peer in peers:
            peer.close()
    # Every slot is free again: a new association is accepted.
    tuned.wait_for_log(r"association ended \(released\)")
    with RawPeer.connect(tuned.port) as peer:
        peer.associate()
        peer.release()


@pytest.mark.parametrize("tuned", [{"OXIDICOM_ARTIM_TIMEOUT": "1s"}], indirect=True)
def test_a_silent_peer_is_dropped_after_artim(tuned: RunningReceiver) -> None:
    with RawPeer.connect(tuned.port) as peer:
        # PS3.8 9.1.5 / AA-2: ARTIM expiry in Sta2 closes the transport, sending nothing.
        assert peer.read_until_closed() == []
    tuned.wait_for_log(r"ARTIM timer expired")


def trickle(peer: RawPeer, data: bytes) -> int:
    """Send ``data`` one byte at a time, 0.25 s apart, until the receiver answers.

    Returns how many bytes went out. The gap is the attack being tested, not a
    synchronisation: the end is seen as the socket becoming readable.
    """
    for sent, byte in enumerate(data, 1):
        peer.send(bytes([byte]))
        readable, _, _ = select.select([peer.sock], [], [], 0.25)
        if readable:
            return sent
    raise AssertionError("the receiver never gave up on a trickling peer")


@pytest.mark.parametrize("tuned", [{"OXIDICOM_ARTIM_TIMEOUT": "1s"}], indirect=True)
def test_a_request_trickled_byte_by_byte_is_dropped_by_artim(tuned: RunningReceiver) -> None:
    request = associate_rq()
    with RawPeer.connect(tuned.port) as peer:
        sent = trickle(peer, request)
        assert sent < len(request)
        assert peer.read_until_closed() == []


@pytest.mark.parametrize("tuned", [{"OXIDICOM_IDLE_TIMEOUT": "1s"}], indirect=True)
def test_an_association_trickling_a_pdu_is_aborted_by_the_idle_timeout(
    tuned: RunningReceiver,
) -> None:
    with RawPeer.connect(tuned.port) as peer:
        peer.associate()
        echo = pdata(1, True, True, encode_request(CommandField.C_ECHO_RQ, 1))
        sent = trickle(peer, echo * 4)
        assert sent < len(echo) * 4
        answers = peer.read_until_closed()
    assert [type(p) for p in answers][-1:] == [ul.Abort]
    assert sum(isinstance(p, ul.Abort) for p in answers) == 1
    tuned.wait_for_log(r"idle timer expired")


@pytest.mark.parametrize("tuned", [{"OXIDICOM_IDLE_TIMEOUT": "1s"}], indirect=True)
def test_a_silent_association_is_aborted_by_the_idle_timeout(tuned: RunningReceiver) -> None:
    with RawPeer.connect(tuned.port) as peer:
        peer.associate()
        answers = peer.read_until_closed()
    assert answers == [ul.Abort(0, 0)]


@pytest.mark.parametrize(
    "tuned",
    [
        {"OXIDICOM_MAX_PENDING_CONNECTIONS": "4", "OXIDICOM_WORKERS": "1"},
        {"OXIDICOM_MAX_PENDING_CONNECTIONS": "4", "OXIDICOM_WORKERS": "2"},
    ],
    ids=["one-process", "two-workers"],
    indirect=True,
)
def test_a_flood_of_idle_connections_keeps_only_the_newest(tuned: RunningReceiver) -> None:
    one_process = tuned.processes() == 1
    pids = tuned.serving_pids()
    baseline = sum(open_sockets(pid) for pid in pids)
    flood = [RawPeer.connect(tuned.port) for _ in range(50)]
    try:
        # All but 4 are closed as newer ones arrive, without a word (Sta2). One process
        # keeps the newest 4; each of two workers keeps the newest 2 of those it was given.
        closed = wait_until_closed(flood, 46)
        kept = [peer for peer in flood if peer not in closed]
        if one_process:
            assert kept == flood[46:]
        assert sum(open_sockets(pid) for pid in pids) <= baseline + 4
        # A real peer still gets in; it evicts the oldest idle one of its process, the
        # others stay usable.
        with RawPeer.connect(tuned.port) as peer:
            peer.associate()
            [evicted] = wait_until_closed(kept, 1)
            assert peer.c_echo() == 0x0000
            peer.release()
        if one_process:
            assert evicted is flood[46]
        for peer in kept:
            if peer is not evicted:
                peer.associate()
                peer.release()
    finally:
        for peer in flood:
            peer.close()
    tuned.wait_for_log(r"more than 4 connections without an association")


@pytest.mark.parametrize("tuned", [{"OXIDICOM_MAX_COMMAND_SET_LENGTH": "1024"}], indirect=True)
def test_a_command_set_over_the_cap_is_aborted(tuned: RunningReceiver) -> None:
    long_uid = "1." + "2" * 1100
    command = encode_request(
        CommandField.C_STORE_RQ,
        1,
        affected_sop_class_uid=MR_STORAGE,
        affected_sop_instance_uid=long_uid,
        has_dataset=True,
    )
    with RawPeer.connect(tuned.port) as peer:
        peer.associate(associate_rq(contexts=STORE_CONTEXTS))
        assert peer.c_echo() == 0x0000  # a normal command set is fine
        peer.send(message(3, command, b"\x00" * 8, 16000))
        # The DIMSE layer (the UL service user) aborts: source 0, PS3.8 Table 9-26.
        assert peer.read_until_closed() == [ul.Abort(0, 0)]
    tuned.wait_for_log(r"command set longer than 1024 bytes")


@pytest.mark.parametrize("tuned", [{}], indirect=True)
def test_more_presentation_contexts_than_the_standard_allows_is_rejected(
    tuned: RunningReceiver,
) -> None:
    contexts = tuple(
        ul.PresentationContextRQ((2 * i + 1) % 256, VERIFICATION, (EXPLICIT_LE,))
        for i in range(MAX_PRESENTATION_CONTEXTS + 1)
    )
    request = ul.AssociateRQ(
        called_ae_title="ChRIS",
        calling_ae_title="MANY",
        application_context="1.2.840.10008.3.1.1.1",
        presentation_contexts=contexts,
        user_information=ul.UserInformation(maximum_length=16384),
    )
    with RawPeer.connect(tuned.port) as peer:
        peer.send(ul.encode(request))
        assert peer.read_until_closed() == [
            ul.AssociateRJ(
                RejectResult.PERMANENT, RejectSource.SERVICE_USER, UserRejectReason.NO_REASON_GIVEN
            )
        ]


@pytest.mark.parametrize(
    "tuned",
    [{"OXIDICOM_SCP_STRICT": "true", "OXIDICOM_SCP_MAX_PDU_LENGTH": "16384"}],
    indirect=True,
)
def test_strict_mode_aborts_a_pdu_over_the_advertised_length(tuned: RunningReceiver) -> None:
    uid, dataset = instance_bytes(rows=128, columns=128)
    command = encode_request(
        CommandField.C_STORE_RQ,
        2,
        affected_sop_class_uid=MR_STORAGE,
        affected_sop_instance_uid=uid,
        has_dataset=True,
    )
    with RawPeer.connect(tuned.port) as peer:
        ac = peer.associate(associate_rq(contexts=STORE_CONTEXTS))
        assert ac.user_information.maximum_length == 16384
        # PDUs of exactly the advertised length are fine (PDV data = length - 6)...
        assert peer.c_store(dataset, uid, context_id=3, max_pdv=16384 - 6) == 0x0000
        # ...one byte more is not: PS3.8 9.3.1, A-ABORT invalid-PDU-parameter-value.
        oversized = message(3, command, dataset, 16384 - 5)
        assert (
            struct.unpack_from(">I", oversized, 2 + len(pdata(3, True, True, command)))[0] == 16385
        )
        peer.send(oversized)
        answers = peer.read_until_closed()
    assert answers == [ul.Abort(2, 6)]
    tuned.wait_for_log(r"exceeds our maximum of 16384 \(strict mode\)")
