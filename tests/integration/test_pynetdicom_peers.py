"""The receiver against pynetdicom as the SCU (a test client only)."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)
from pynetdicom import AE, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

from oxidicom.dicom.uids import STORAGE_SOP_CLASSES
from oxidicom.ul import pdu
from oxidicom.ul.constants import (
    PresentationRejectReason,
    RejectResult,
    RejectSource,
)
from tests.dicom_factory import mr_instance, with_transfer_syntax
from tests.integration.pynetdicom_scu import scu_only
from tests.integration.receiver import RunningReceiver, start_receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def tuned_receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningReceiver]:
    running = start_receiver(tmp_path, getattr(request, "param", {}))
    yield running
    running.stop()


def associate(receiver: RunningReceiver, contexts: list[tuple[str, list[str]]], **kwargs: object):
    ae = AE(ae_title="PYNETDICOM")
    for abstract, transfer in contexts:
        ae.add_requested_context(abstract, transfer)
    assoc = ae.associate("127.0.0.1", receiver.port, ae_title="ChRIS", **kwargs)
    assert assoc.is_established
    return scu_only(assoc)


def stored_copy(receiver: RunningReceiver, ds: pydicom.Dataset) -> pydicom.Dataset:
    matches = [p for p in receiver.stored_files() if p.name.endswith(f"-{ds.SOPInstanceUID}.dcm")]
    assert len(matches) == 1, matches
    return pydicom.dcmread(matches[0])


def test_deflated_instance_is_stored_deflated(receiver: RunningReceiver) -> None:
    ds = with_transfer_syntax(mr_instance(), DeflatedExplicitVRLittleEndian)
    assoc = associate(receiver, [(MRImageStorage, [DeflatedExplicitVRLittleEndian])])
    status = assoc.send_c_store(ds)
    assoc.release()
    assert status.Status == 0x0000
    copy = stored_copy(receiver, ds)
    assert copy.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert copy.PatientName == "Doe^Jane"
    assert copy.PixelData == ds.PixelData


def test_many_presentation_contexts(receiver: RunningReceiver) -> None:
    classes = sorted(STORAGE_SOP_CLASSES - {MRImageStorage})[:126]
    contexts = [
        (MRImageStorage, [ImplicitVRLittleEndian]),
        (Verification, [ImplicitVRLittleEndian]),
    ]
    contexts += [(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]) for uid in classes]
    assert len(contexts) == 128
    assoc = associate(receiver, contexts)
    accepted = assoc.accepted_contexts
    ds = with_transfer_syntax(mr_instance(), ImplicitVRLittleEndian)
    status = assoc.send_c_store(ds)
    assoc.release()
    assert len(accepted) == 128
    assert status.Status == 0x0000
    assert stored_copy(receiver, ds).SOPInstanceUID == ds.SOPInstanceUID


@pytest.mark.parametrize("tuned_receiver", [{"OXIDICOM_SCP_MAX_PDU_LENGTH": "4096"}], indirect=True)
def test_data_set_over_many_small_pdus(tuned_receiver: RunningReceiver) -> None:
    ds = with_transfer_syntax(mr_instance(rows=512, columns=512), ExplicitVRLittleEndian)
    # 512 KiB of pixels: 128+ PDUs of 4 KiB
    assoc = associate(tuned_receiver, [(MRImageStorage, [ExplicitVRLittleEndian])])
    advertised = assoc.acceptor.maximum_length
    status = assoc.send_c_store(ds)
    assoc.release()
    assert advertised == 4096
    assert status.Status == 0x0000
    assert stored_copy(tuned_receiver, ds).PixelData == ds.PixelData


def test_large_multiframe_instance(receiver: RunningReceiver) -> None:
    frames = 128
    ds = with_transfer_syntax(
        mr_instance(rows=512, columns=512, frames=frames), ExplicitVRLittleEndian
    )
    digest = hashlib.sha256(ds.PixelData).hexdigest()
    assoc = associate(receiver, [(MRImageStorage, [ExplicitVRLittleEndian])])
    status = assoc.send_c_store(ds)
    assoc.release()
    assert status.Status == 0x0000
    copy = stored_copy(receiver, ds)
    assert copy.NumberOfFrames == frames
    assert hashlib.sha256(copy.PixelData).hexdigest() == digest


def test_echo_response_carries_the_message_id(receiver: RunningReceiver) -> None:
    responses = []

    def on_receive(event: evt.Event) -> None:
        responses.append(event.message.command_set)

    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(Verification)
    assoc = ae.associate(
        "127.0.0.1",
        receiver.port,
        ae_title="ChRIS",
        evt_handlers=[(evt.EVT_DIMSE_RECV, on_receive)],
    )
    scu_only(assoc)
    first = assoc.send_c_echo(msg_id=777)
    second = assoc.send_c_echo(msg_id=4242)
    assoc.release()
    assert first.Status == 0x0000 and second.Status == 0x0000
    assert [r.MessageIDBeingRespondedTo for r in responses] == [777, 4242]
    for response in responses:
        assert response.CommandField == 0x8030
        assert response.AffectedSOPClassUID == Verification
        assert response.CommandDataSetType == 0x0101


def test_missing_study_date_is_refused_and_the_next_stored(receiver: RunningReceiver) -> None:
    bad = with_transfer_syntax(
        mr_instance(instance_number=1, StudyDate=None), ExplicitVRLittleEndian
    )
    good = with_transfer_syntax(mr_instance(instance_number=2), ExplicitVRLittleEndian)
    assoc = associate(receiver, [(MRImageStorage, [ExplicitVRLittleEndian])])
    bad_status = assoc.send_c_store(bad)
    good_status = assoc.send_c_store(good)
    assoc.release()
    assert bad_status.Status & 0xF000 == 0xC000
    assert "StudyDate" in bad_status.ErrorComment
    assert good_status.Status == 0x0000
    stored = receiver.stored_files()
    assert [p.name for p in stored] == [f"0002-{good.SOPInstanceUID}.dcm"]
    assert not list((receiver.files_root / ".oxidicom-tmp").rglob("*.part"))


@pytest.mark.parametrize("tuned_receiver", [{"OXIDICOM_SCP_PROMISCUOUS": "true"}], indirect=True)
def test_unsupported_command_fails_and_association_goes_on(tuned_receiver: RunningReceiver) -> None:
    query = pydicom.Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    assoc = associate(
        tuned_receiver,
        [
            (StudyRootQueryRetrieveInformationModelFind, [ImplicitVRLittleEndian]),
            (Verification, [ImplicitVRLittleEndian]),
        ],
    )
    statuses = [
        status for status, _ in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
    ]
    echo = assoc.send_c_echo()
    assoc.release()
    assert [s.Status for s in statuses] == [0x0211]
    assert echo.Status == 0x0000


def _raw_associate(port: int, request: pdu.AssociateRQ) -> pdu.PDU:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(pdu.encode(request))
        header = _recv_exactly(sock, 6)
        body = _recv_exactly(sock, int.from_bytes(header[2:6], "big"))
        return pdu.parse_pdu(header + body)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def _echo_request(**changes: object) -> pdu.AssociateRQ:
    fields: dict[str, object] = {
        "called_ae_title": "ChRIS",
        "calling_ae_title": "RAW",
        "application_context": "1.2.840.10008.3.1.1.1",
        "presentation_contexts": (
            pdu.PresentationContextRQ(1, Verification, (ImplicitVRLittleEndian,)),
        ),
        "user_information": pdu.UserInformation(maximum_length=16384),
    }
    fields.update(changes)
    return pdu.AssociateRQ(**fields)  # type: ignore[arg-type]


def test_unknown_application_context_is_rejected(receiver: RunningReceiver) -> None:
    answer = _raw_associate(receiver.port, _echo_request(application_context="1.2.3.4"))
    assert answer == pdu.AssociateRJ(RejectResult.PERMANENT, RejectSource.SERVICE_USER, 2)


def test_unsupported_protocol_version_is_rejected(receiver: RunningReceiver) -> None:
    answer = _raw_associate(receiver.port, _echo_request(protocol_version=2))
    assert answer == pdu.AssociateRJ(RejectResult.PERMANENT, RejectSource.SERVICE_PROVIDER_ACSE, 2)


@pytest.mark.parametrize("tuned_receiver", [{"OXIDICOM_LISTENER_THREADS": "1"}], indirect=True)
def test_association_beyond_the_limit_is_rejected_transient(
    tuned_receiver: RunningReceiver,
) -> None:
    holder = associate(tuned_receiver, [(Verification, [ImplicitVRLittleEndian])])
    try:
        answer = _raw_associate(tuned_receiver.port, _echo_request())
    finally:
        holder.release()
    assert answer == pdu.AssociateRJ(
        RejectResult.TRANSIENT,
        RejectSource.SERVICE_PROVIDER_PRESENTATION,
        PresentationRejectReason.LOCAL_LIMIT_EXCEEDED,
    )
    # The slot is free again once the first association ended.
    tuned_receiver.wait_for_log(r"association ended \(released\)")
    again = _raw_associate(tuned_receiver.port, _echo_request())
    assert isinstance(again, pdu.AssociateAC)
