"""Hostile traffic on raw sockets against the real receiver, while a real peer stores.

Every malformed conversation gets exactly one A-ABORT and a closed connection (or just
the close, when the peer closed first and there is no one left to tell); meanwhile a
pynetdicom association on the same receiver stores every one of its files.
"""

from __future__ import annotations

import io
import random
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage
from pynetdicom import AE

from oxidicom.dimse.commands import CommandField, encode_request
from oxidicom.ul import pdu as ul
from tests.dicom_factory import mr_instance, with_transfer_syntax, write_part10
from tests.integration.pynetdicom_scu import scu_only
from tests.integration.raw_peer import (
    EXPLICIT_LE,
    MR_STORAGE,
    VERIFICATION,
    RawPeer,
    associate_rq,
    dataset_of,
    message,
    pdata,
)
from tests.integration.receiver import RunningReceiver, start_receiver

pytestmark = pytest.mark.integration

STORE_CONTEXTS = ((VERIFICATION, "1.2.840.10008.1.2"), (MR_STORAGE, EXPLICIT_LE))


def instance_bytes(**overrides: object) -> tuple[str, bytes]:
    ds = mr_instance(**overrides)
    buffer = io.BytesIO()
    write_part10(ds, buffer, ExplicitVRLittleEndian)  # type: ignore[arg-type]
    return str(ds.SOPInstanceUID), dataset_of(buffer.getvalue())


def _rq_with_overrunning_item() -> bytes:
    raw = bytearray(associate_rq())
    # The application context item starts at byte 74; make its length overrun the PDU.
    struct.pack_into(">H", raw, 76, 0xFFF0)
    return bytes(raw)


def _established(then: bytes) -> Callable[[RawPeer], None]:
    def send(peer: RawPeer) -> None:
        peer.associate(associate_rq(contexts=STORE_CONTEXTS))
        peer.send(then)

    return send


def _raw(data: bytes) -> Callable[[RawPeer], None]:
    return lambda peer: peer.send(data)


_STORE_COMMAND = encode_request(
    CommandField.C_STORE_RQ,
    1,
    affected_sop_class_uid=MR_STORAGE,
    affected_sop_instance_uid="1.2.3",
    has_dataset=True,
)

#: name -> what the hostile peer sends; each must get one A-ABORT, then the close.
ABORTED: dict[str, Callable[[RawPeer], None]] = {
    "http request": _raw(b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n"),
    "unknown PDU type": _raw(b"\x50\x00\x00\x00\x00\x02ab"),
    "A-ASSOCIATE-RQ of 4 GiB": _raw(b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 64),
    "A-ASSOCIATE-RQ whose item overruns it": _raw(_rq_with_overrunning_item()),
    "P-DATA-TF before any association": _raw(pdata(1, True, True, b"\x00" * 8)),
    "A-RELEASE-RQ before any association": _raw(ul.encode(ul.ReleaseRQ())),
    "P-DATA-TF with a PDV overrunning it": _established(
        b"\x04\x00\x00\x00\x00\x0a" + struct.pack(">IBB", 200, 1, 3) + b"\x00" * 4
    ),
    "P-DATA-TF over the hard cap": _established(b"\x04\x00\xff\xff\xff\xf0" + b"\x00" * 64),
    "garbage after the association": _established(bytes(random.Random(7).randbytes(3000))),
    "second A-ASSOCIATE-RQ": _established(associate_rq()),
    "data set without a command": _established(pdata(3, False, True, b"\x08\x00")),
    "command set over the cap": _established(
        b"".join(pdata(1, True, False, b"\x00" * 16000) for _ in range(5))
    ),
    "undecodable command set": _established(pdata(1, True, True, b"\x00\x00\x01\x00")),
    "command on a context never proposed": _established(pdata(9, True, True, _STORE_COMMAND)),
    "truncated data set then A-ASSOCIATE-RQ": _established(
        message(3, _STORE_COMMAND, None, 16000)
        + pdata(3, False, False, b"\x08\x00\x05\x00")
        + associate_rq()
    ),
}


@pytest.fixture
def busy_receiver(tmp_path: Path) -> Iterator[tuple[RunningReceiver, threading.Event, list]]:
    """A receiver with a pynetdicom association storing until the test says stop."""
    receiver = start_receiver(tmp_path, {"OXIDICOM_LISTENER_THREADS": "4"})
    stop = threading.Event()
    statuses: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    associated = threading.Event()

    def store_until_stopped() -> None:
        try:
            ae = AE(ae_title="GOODPACS")
            ae.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
            assoc = ae.associate("127.0.0.1", receiver.port, ae_title="ChRIS")
            assert assoc.is_established
            scu_only(assoc)
            associated.set()
            number = 0
            while not stop.is_set() or number < 5:
                number += 1
                ds = with_transfer_syntax(
                    mr_instance(instance_number=number), ExplicitVRLittleEndian
                )
                status = assoc.send_c_store(ds)
                statuses.append((str(ds.SOPInstanceUID), int(status.Status)))
            assoc.release()
        except BaseException as error:  # reported by the test
            errors.append(error)
            associated.set()

    worker = threading.Thread(target=store_until_stopped)
    worker.start()
    assert associated.wait(60)
    try:
        yield receiver, stop, statuses
    finally:
        stop.set()
        worker.join(120)
        receiver.stop()
    assert not errors, errors


def test_hostile_peers_get_one_abort_and_the_good_peer_stores_everything(
    busy_receiver: tuple[RunningReceiver, threading.Event, list],
) -> None:
    receiver, stop, statuses = busy_receiver
    for name, attack in ABORTED.items():
        with RawPeer.connect(receiver.port) as peer:
            attack(peer)
            answers = peer.read_until_closed()
            aborts = [p for p in answers if isinstance(p, ul.Abort)]
            assert len(aborts) == 1, (name, answers)
            assert isinstance(answers[-1], ul.Abort), (name, answers)

    # A truncated PDU followed by the peer's close: nothing to answer, the close is seen.
    for cut in (3, 40, 100):
        with RawPeer.connect(receiver.port) as peer:
            peer.send(associate_rq()[:cut])
            peer.sock.shutdown(socket.SHUT_WR)
            assert peer.read_until_closed() == []

    stop.set()
    receiver.wait_for_log(r"\[[0-9a-f]+-1\] association ended \(released\)")
    assert len(statuses) >= 5
    assert all(status == 0x0000 for _, status in statuses), statuses
    stored = {p.name.split("-", 1)[1][:-4] for p in receiver.stored_files()}
    assert stored == {uid for uid, _ in statuses}
    assert "Traceback" not in receiver.log()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_conversation_split_at_random_points_is_served(
    receiver: RunningReceiver, seed: int
) -> None:
    rng = random.Random(seed)
    uid, dataset = instance_bytes()
    command = encode_request(
        CommandField.C_STORE_RQ,
        7,
        affected_sop_class_uid=MR_STORAGE,
        affected_sop_instance_uid=uid,
        has_dataset=True,
        priority=0,
    )
    stream = (
        associate_rq(contexts=STORE_CONTEXTS)
        + message(3, command, dataset, 1000)
        + ul.encode(ul.ReleaseRQ())
    )
    cuts = sorted(rng.sample(range(1, len(stream)), 40))
    with RawPeer.connect(receiver.port) as peer:
        for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            peer.send(stream[start:end])
        answers = peer.read_until_closed()
    assert [type(p) for p in answers] == [ul.AssociateAC, ul.PDataTF, ul.ReleaseRP]
    assert [p.name.endswith(f"-{uid}.dcm") for p in receiver.stored_files()] == [True]


def test_non_ascii_ae_title_and_uid_are_answered(receiver: RunningReceiver) -> None:
    """Regressions of fuzz finds: these made the AC, or the C-STORE-RSP, fail to encode."""
    uid, dataset = instance_bytes()
    with RawPeer.connect(receiver.port) as peer:
        ac = peer.associate(associate_rq(calling="PACS\xe9\xff", contexts=STORE_CONTEXTS))
        assert ac.calling_ae_title == "PACS\xe9\xff"
        # Not the data set's SOPInstanceUID: A900, its UID echoed and named in the comment.
        assert peer.c_store(dataset, uid + "\xe9", context_id=3) == 0xA900
        assert peer.c_store(dataset, uid, context_id=3, message_id=2) == 0x0000
        peer.release()
    [stored] = receiver.stored_files()
    assert stored.relative_to(receiver.pacs_root).parts[0] == "PACS_"
    assert stored.name.endswith(f"-{uid}.dcm")
