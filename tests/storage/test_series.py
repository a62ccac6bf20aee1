from __future__ import annotations

from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from oxidicom.dicom.head import parse_head
from oxidicom.storage.series import SeriesAccumulator
from oxidicom.storage.writer import StoredInstance
from tests.dicom_factory import mr_instance


def stored(series_uid: str, number: int) -> StoredInstance:
    ds = mr_instance(instance_number=number, series_uid=series_uid)
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    fields = parse_head("1.2.840.10008.1.2.1", buffer.getvalue())
    return StoredInstance(fields, f"SERVICES/PACS/X/{series_uid}", f"{number:04d}.dcm", 10)


def test_counts_per_series_and_only_series_with_stored_files() -> None:
    accumulator = SeriesAccumulator("a-1", "PACS")
    assert accumulator.stored(stored("1.2.1", 1)).count == 1
    assert accumulator.stored(stored("1.2.2", 1)).count == 1
    record = accumulator.stored(stored("1.2.1", 2))
    accumulator.failed("1.2.1", "disk full")
    accumulator.failed("1.2.3", "missing StudyDate")
    assert record.count == 2 and record.failed == 1
    finished = accumulator.finish()
    assert [(r.series_instance_uid, r.count) for r in finished] == [("1.2.1", 2), ("1.2.2", 1)]
    assert (accumulator.stored_count, accumulator.failed_count) == (3, 2)


def test_a_promised_series_without_stored_files_is_listed_to_withdraw_its_promise() -> None:
    accumulator = SeriesAccumulator("a-1", "PACS")
    accumulator.record("1.2.1").journal_key = 7  # promised, then its file failed
    accumulator.record("1.2.2")  # its promise failed: nothing to withdraw
    accumulator.failed("1.2.2", "cannot record the series registration")
    [withdrawn] = accumulator.finish()
    assert (withdrawn.series_instance_uid, withdrawn.count, withdrawn.journal_key) == (
        "1.2.1",
        0,
        7,
    )
