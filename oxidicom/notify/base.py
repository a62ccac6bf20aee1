"""What the receiver tells the outside world about storage outcomes."""

from __future__ import annotations

from typing import Protocol

from oxidicom.series import SeriesRecord


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
