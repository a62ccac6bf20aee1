"""What the receiver tells the outside world, and the simplest listener: the log."""

from __future__ import annotations

import logging
from typing import Protocol

from oxidicom.series import SeriesRecord

log = logging.getLogger("oxidicom.series")


class Notifier(Protocol):
    """Receives storage outcomes as they happen and each association's end."""

    def instance_stored(self, series: SeriesRecord) -> None:
        """``series.count`` files of this series are now at their final paths."""

    def instance_failed(
        self, association_id: str, pacs_name: str, series_instance_uid: str | None, message: str
    ) -> None:
        """An instance was refused or could not be written."""

    def association_ended(self, association_id: str, series: list[SeriesRecord]) -> None:
        """The association is over and every listed series' files are final."""


class LogNotifier:
    """Logs each finished series (the embedded default before brokers are configured)."""

    def instance_stored(self, series: SeriesRecord) -> None:
        pass

    def instance_failed(
        self, association_id: str, pacs_name: str, series_instance_uid: str | None, message: str
    ) -> None:
        pass

    def association_ended(self, association_id: str, series: list[SeriesRecord]) -> None:
        for record in series:
            # The folder names the patient: DEBUG only (no patient data above it).
            log.info(
                "series finished: %d file(s) of %s from %s",
                record.count,
                record.series_instance_uid,
                record.pacs_name,
                extra={"association": association_id},
            )
            log.debug("series %s is in %s", record.series_instance_uid, record.series_dir)
