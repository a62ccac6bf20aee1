"""The series accumulator: storage outcomes of one association, grouped by series.

CONTRACT section 3 keys a series by (association, calling AE title,
SeriesInstanceUID). Only storage outcomes feed it: a count can never run ahead
of the files on disk.

An association may store tens of thousands of series (an archive migration sends one
instance per series), so a record holds counts only: the series' registration fields
are in its journal entry (:mod:`oxidicom.notify.journal`), read back when the
association ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from oxidicom.storage.writer import StoredInstance

if TYPE_CHECKING:
    from oxidicom.notify.settle import PendingSeries


@dataclass(slots=True)
class SeriesRecord:
    """What one association stored of one series, and what was promised and told of it."""

    association_id: str
    pacs_name: str
    series_instance_uid: str
    count: int = 0
    failed: int = 0
    #: Its series journal entry (per process), once its registration is promised.
    journal_key: str | None = None
    #: The series across associations, when series settle (``OXIDICOM_SERIES_SETTLE``).
    pending: PendingSeries | None = None
    #: LONK: the last progress count handed over, and when (:mod:`oxidicom.notify.progress`).
    progress_sent: int = 0
    progress_at: float = 0.0


class SeriesAccumulator:
    """Counts and series information for one association."""

    def __init__(self, association_id: str, pacs_name: str) -> None:
        self.association_id = association_id
        self.pacs_name = pacs_name
        self._series: dict[str, SeriesRecord] = {}
        self.stored_count = 0
        self.failed_count = 0

    def record(self, series_instance_uid: str | None) -> SeriesRecord:
        """The series' record, made when its first file is about to be placed."""
        uid = series_instance_uid or ""
        record = self._series.get(uid)
        if record is None:
            record = self._series[uid] = SeriesRecord(self.association_id, self.pacs_name, uid)
        return record

    def stored(self, instance: StoredInstance) -> SeriesRecord:
        """A file reached its final path; returns its series with the new count."""
        uid = instance.fields.series_instance_uid or ""
        record = self._series.get(uid)  # made by record() before the file was placed
        if record is None:
            record = self.record(uid)
        record.count += 1
        self.stored_count += 1
        return record

    def failed(self, series_instance_uid: str | None, message: str) -> None:
        """An instance could not be stored."""
        self.failed_count += 1
        record = self._series.get(series_instance_uid or "")
        if record is not None:
            record.failed += 1

    def finish(self) -> list[SeriesRecord]:
        """The series with a stored instance or a promised registration, in order begun.

        A promised series with no stored file (its files all failed after the promise)
        is listed so that its journal entry is withdrawn; it is never registered.
        """
        return [r for r in self._series.values() if r.count or r.journal_key is not None]
