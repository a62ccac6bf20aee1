"""One STOW-RS request through the real storage writer, without HTTP (dicomweb/ingest.py).

Each part fails alone, nothing partial is left on disk, and the request's series reach
the notifier once, when it ends, however it ends.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian

from oxidicom.dicom.head import HeadFields
from oxidicom.dicomweb.ingest import (
    REFERENCED_SOP_CLASS_NOT_SUPPORTED,
    REFERENCED_TRANSFER_SYNTAX_NOT_SUPPORTED,
    STUDY_INSTANCE_UID_MISMATCH,
    StowRequest,
)
from oxidicom.dicomweb.telemetry import RequestTelemetry
from oxidicom.scp.acceptance import AcceptancePolicy
from oxidicom.storage.series import SeriesRecord
from oxidicom.storage.writer import Store
from tests.dicom_factory import STUDY_UID, mr_instance
from tests.dicomweb_helpers import part10


class RecordingNotifier:
    def __init__(self) -> None:
        self.starting: list[str] = []
        self.stored: list[tuple[str, int]] = []
        self.failed: list[tuple[str, str, str | None]] = []
        self.ended: list[tuple[str, list[tuple[str, int]]]] = []

    def series_starting(self, series: SeriesRecord, fields: HeadFields, series_dir: str) -> None:
        series.journal_key = len(self.starting)
        self.starting.append(series_dir)

    def instance_stored(self, series: SeriesRecord) -> None:
        self.stored.append((series.series_instance_uid, series.count))

    def instance_failed(
        self, association_id: str, pacs_name: str, series_instance_uid: str | None, message: str
    ) -> None:
        self.failed.append((association_id, pacs_name, series_instance_uid))

    def association_ended(self, association_id: str, series: list[SeriesRecord]) -> None:
        self.ended.append((association_id, [(s.series_instance_uid, s.count) for s in series]))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "files", flush_bytes=64 * 1024)
    store.prepare()
    return store


def request(store: Store, notifier: RecordingNotifier, study: str | None = None) -> StowRequest:
    return StowRequest(
        store=store,
        notifier=notifier,
        policy=AcceptancePolicy(ae_title="ChRIS", max_pdu_length=16384),
        telemetry=RequestTelemetry("test-1", "127.0.0.1:5555"),
        pacs_name="LABPACS",
        study_instance_uid=study,
    )


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def data_set_offset(part10_bytes: bytes) -> int:
    """Where the data set starts: after (0002,0000) and the group it counts."""
    return 132 + 12 + struct.unpack_from("<L", part10_bytes, 132 + 8)[0]


def files(store: Store) -> list[Path]:
    return sorted(p for p in (store.root / "SERVICES").rglob("*.dcm"))


def temporary_files(store: Store) -> list[Path]:
    return [p for p in store.tmp_dir.rglob("*.part") if p.is_file()]


async def test_a_part_is_stored_with_its_data_set_byte_for_byte(store: Store) -> None:
    notifier = RecordingNotifier()
    stow = request(store, notifier)
    ds = mr_instance(rows=256, columns=256)  # 128 KiB of pixels: streamed past flush_bytes
    data = part10(ds)
    outcome = await stow.store_part(chunks(data), "application/dicom")
    assert outcome.stored and outcome.sop_instance_uid == ds.SOPInstanceUID
    [path] = files(store)
    assert "/SERVICES/PACS/LABPACS/" in str(path)
    stored = path.read_bytes()
    # The data set (everything after the file meta) is identical; the meta is ours.
    assert stored[data_set_offset(stored) :] == data[data_set_offset(data) :]
    assert b"LABPACS" in stored[: data_set_offset(stored)]  # SourceApplicationEntityTitle
    assert notifier.stored == [(ds.SeriesInstanceUID, 1)]
    stow.end("completed")
    assert notifier.ended == [("test-1", [(ds.SeriesInstanceUID, 1)])]


async def test_a_deflated_part_is_stored_as_it_came(store: Store) -> None:
    stow = request(store, RecordingNotifier())
    data = part10(mr_instance(), DeflatedExplicitVRLittleEndian)
    outcome = await stow.store_part(chunks(data, 97))
    assert outcome.stored
    [path] = files(store)
    assert DeflatedExplicitVRLittleEndian.encode() in path.read_bytes()[:400]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not dicom at all", 0xC000),
        (part10(mr_instance(PatientID=None)), 0xC001),
        (part10(mr_instance())[:150], 0xC000),  # ends inside its file meta
    ],
)
async def test_unstorable_parts_fail_alone_and_leave_nothing(
    store: Store, data: bytes, reason: int
) -> None:
    notifier = RecordingNotifier()
    stow = request(store, notifier)
    bad = await stow.store_part(chunks(data))
    good = await stow.store_part(chunks(part10(mr_instance())))
    assert bad.failure_reason == reason
    assert good.stored
    assert len(files(store)) == 1
    assert temporary_files(store) == []
    assert len(notifier.failed) == 1 and notifier.failed[0][:2] == ("test-1", "LABPACS")


async def test_meta_and_data_set_that_disagree_fail_with_a900(store: Store) -> None:
    ds = mr_instance()
    data = part10(ds)
    uid = ds.SOPInstanceUID
    other = uid[:-1] + ("1" if uid[-1] != "1" else "2")  # same length: the meta stays valid
    lying = data.replace(uid.encode(), other.encode(), 1)  # the meta's only
    outcome = await request(store, RecordingNotifier()).store_part(chunks(lying))
    assert outcome.failure_reason == 0xA900
    assert files(store) == [] and temporary_files(store) == []


async def test_transfer_syntax_not_accepted_gets_c122(store: Store) -> None:
    stow = StowRequest(
        store=store,
        notifier=RecordingNotifier(),
        policy=AcceptancePolicy(ae_title="ChRIS", max_pdu_length=16384, uncompressed_only=True),
        telemetry=RequestTelemetry("test-2", "127.0.0.1:5555"),
        pacs_name="LABPACS",
    )
    outcome = await stow.store_part(chunks(part10(mr_instance(), DeflatedExplicitVRLittleEndian)))
    assert outcome.failure_reason == REFERENCED_TRANSFER_SYNTAX_NOT_SUPPORTED
    assert files(store) == []


async def test_sop_class_not_storage_gets_0122(store: Store) -> None:
    data = part10(mr_instance(SOPClassUID="1.2.840.10008.1.1"))  # Verification
    outcome = await request(store, RecordingNotifier()).store_part(chunks(data))
    assert outcome.failure_reason == REFERENCED_SOP_CLASS_NOT_SUPPORTED


async def test_a_part_of_another_media_type_fails_without_being_read(store: Store) -> None:
    outcome = await request(store, RecordingNotifier()).store_part(
        chunks(part10(mr_instance())), "application/dicom+json"
    )
    assert outcome.failure_reason == 0xC000 and files(store) == []


async def test_an_instance_of_another_study_than_the_url_fails(store: Store) -> None:
    notifier = RecordingNotifier()
    stow = request(store, notifier, study="1.2.3.4")
    big = mr_instance(rows=512, columns=512)  # 512 KiB: on disk before the study is known
    outcome = await stow.store_part(chunks(part10(big), 65536))
    assert outcome.failure_reason == STUDY_INSTANCE_UID_MISMATCH
    assert files(store) == [] and temporary_files(store) == []
    assert notifier.starting == []  # no registration promised for it
    same = await request(store, notifier, study=STUDY_UID).store_part(chunks(part10(big)))
    assert same.stored


async def test_a_client_gone_mid_part_leaves_nothing_and_the_end_reports_the_rest(
    store: Store,
) -> None:
    notifier = RecordingNotifier()
    stow = request(store, notifier)
    first = mr_instance(instance_number=1)
    assert (await stow.store_part(chunks(part10(first)))).stored

    async def broken() -> AsyncIterator[bytes]:
        data = part10(mr_instance(instance_number=2, rows=512, columns=512))
        yield data[:300_000]  # past flush_bytes: a temporary file exists
        raise ConnectionResetError("Connection lost")

    with pytest.raises(ConnectionResetError):
        await stow.store_part(broken())
    stow.end("the client went away")
    stow.end("again")  # once only
    await store.drain()  # the abandoned file's background removal
    assert len(files(store)) == 1
    assert temporary_files(store) == []
    assert notifier.ended == [("test-1", [(first.SeriesInstanceUID, 1)])]
