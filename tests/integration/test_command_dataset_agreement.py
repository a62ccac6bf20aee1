"""The command and the data set must agree (issue 12, item 6; PS3.4 B.2.3).

A C-STORE-RQ whose AffectedSOPInstanceUID or AffectedSOPClassUID is not the data set's
SOPInstanceUID (0008,0018) or SOPClassUID (0008,0016) gets 0xA900, as dcmtk's storescp
answers, and nothing is stored; the association goes on and the next instance is stored.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxidicom.storage.writer import TMP_DIR_NAME
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.raw_peer import EXPLICIT_LE, MR_STORAGE, RawPeer, associate_rq, dataset_of
from tests.integration.receiver import RunningReceiver, start_receiver

pytestmark = pytest.mark.integration

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_CONTEXT, CT_CONTEXT = 1, 3
CONTEXTS = ((MR_STORAGE, EXPLICIT_LE), (CT_STORAGE, EXPLICIT_LE))


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RunningReceiver]:
    running = start_receiver(tmp_path)
    yield running
    assert running.stop() == 0
    assert "Traceback" not in running.log()


def mr(number: int, size: int = 64) -> tuple[str, bytes]:
    ds = mr_instance(instance_number=number, rows=size, columns=size)
    buffer = io.BytesIO()
    write_part10(ds, buffer)  # type: ignore[arg-type]
    return str(ds.SOPInstanceUID), dataset_of(buffer.getvalue())


def temporary_files(receiver: RunningReceiver) -> list[Path]:
    tmp = receiver.files_root / TMP_DIR_NAME
    return [p for p in tmp.rglob("*") if p.is_file() and p.name != ".lock"]


@pytest.mark.parametrize(
    "size", [64, 1600], ids=["small", "large (5 MB, over the flush threshold)"]
)
def test_mismatched_uids_get_a900_and_nothing_is_stored(
    receiver: RunningReceiver, size: int
) -> None:
    first_uid, first = mr(1, size)
    second_uid, second = mr(2, size)
    third_uid, third = mr(3, size)
    with RawPeer.connect(receiver.port) as peer:
        peer.associate(associate_rq(contexts=CONTEXTS))
        # The data set of the first instance, announced as another instance.
        assert peer.c_store(first, "1.2.826.0.1.3680043.9.9.9", message_id=1) == 0xA900
        assert receiver.stored_files() == []
        assert temporary_files(receiver) == []
        # The data set of an MR instance, announced as a CT instance on the CT context.
        status = peer.c_store(
            second, second_uid, message_id=2, context_id=CT_CONTEXT, sop_class_uid=CT_STORAGE
        )
        assert status == 0xA900
        assert receiver.stored_files() == []
        assert temporary_files(receiver) == []
        # The association goes on.
        assert peer.c_store(third, third_uid, message_id=3, context_id=MR_CONTEXT) == 0x0000
        peer.release()
    assert [p.name for p in receiver.stored_files()] == [f"0003-{third_uid}.dcm"]
    receiver.wait_for_log(
        rf"C-STORE-RQ of 1\.2\.826\.0\.1\.3680043\.9\.9\.9 refused: status A900 "
        rf"SOPInstanceUID {first_uid} of the data set is not the command's "
        r"1\.2\.826\.0\.1\.3680043\.9\.9\.9"
    )
    receiver.wait_for_log(
        rf"C-STORE-RQ of {second_uid} refused: status A900 SOPClassUID {MR_STORAGE} of the "
        rf"data set is not the command's {CT_STORAGE}"
    )
