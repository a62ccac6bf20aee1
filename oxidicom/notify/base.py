"""What the receiver tells the outside world about storage outcomes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from oxidicom.dicom.head import HeadFields
from oxidicom.storage.series import SeriesRecord


class Notifier(Protocol):
    """Receives storage outcomes as they happen and each association's end."""

    def series_starting(
        self, series: SeriesRecord, fields: HeadFields, series_dir: str
    ) -> Callable[[], None] | None:
        """The first file of a series in an association is about to be placed.

        Promise its registration (``fields``: that file's head; ``series_dir``: relative to
        FILES_ROOT). Raises when it cannot be promised: the file is then refused. Returns
        the blocking work that makes the promise durable (run before the file's success
        is answered), or None.
        """

    def instance_stored(self, series: SeriesRecord) -> None:
        """``series.count`` files of this series are now at their final paths."""

    def instance_failed(
        self, association_id: str, pacs_name: str, series_instance_uid: str | None, message: str
    ) -> None:
        """An instance was refused or could not be written."""

    def association_ended(self, association_id: str, series: list[SeriesRecord]) -> None:
        """The association is over and every listed series' files are final.

        A listed series with ``count == 0`` was promised but none of its files stored.
        Returns at once: the work goes on in the background (see the notifier's ``stop``).
        """
