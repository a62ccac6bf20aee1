"""The series accumulator: storage outcomes of one association, grouped by series.

CONTRACT section 3 keys a series by (association, calling AE title,
SeriesInstanceUID). Only storage outcomes feed it: a count can never run ahead
of the files on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oxidicom.dicom.head import HeadFields
from oxidicom.storage.writer import StoredInstance


@dataclass(slots=True)
class SeriesRecord:
    """What one association stored of one series."""

    association_id: str
    pacs_name: str
    series_instance_uid: str
    #: The first stored instance's head: the series' registration fields.
    fields: HeadFields
    #: Series folder relative to FILES_ROOT, no trailing slash.
    series_dir: str
    count: int = 0
    errors: list[str] = field(default_factory=list)


class SeriesAccumulator:
    """Counts and series information for one association."""

    def __init__(self, association_id: str, pacs_name: str) -> None:
        self.association_id = association_id
        self.pacs_name = pacs_name
        self._series: dict[str, SeriesRecord] = {}
        self.stored_count = 0
        self.failed_count = 0

    def stored(self, instance: StoredInstance) -> SeriesRecord:
        """A file reached its final path; returns its series with the new count."""
        uid = instance.fields.series_instance_uid or ""
        record = self._series.get(uid)
        if record is None:
            record = SeriesRecord(
                self.association_id, self.pacs_name, uid, instance.fields, instance.series_dir
            )
            self._series[uid] = record
        record.count += 1
        self.stored_count += 1
        return record

    def failed(self, series_instance_uid: str | None, message: str) -> None:
        """An instance could not be stored."""
        self.failed_count += 1
        record = self._series.get(series_instance_uid or "")
        if record is not None:
            record.errors.append(message)

    def finish(self) -> list[SeriesRecord]:
        """The series with at least one stored instance, in the order they began."""
        return [record for record in self._series.values() if record.count]
