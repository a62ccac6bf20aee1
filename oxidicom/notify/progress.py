"""Which LONK messages a series gets, and when (CONTRACT section 4); pure, time passed in.

Per series and association, in this order:

1. progress with count 1, always;
2. further progress, optional: at most one per ``interval`` per series, and only while the
   outgoing buffer has room for optional messages; counts strictly increase;
3. at the end of the association, progress with the exact total, then done, both always.
   The final progress is left out only when the last progress handed over already carried
   the total (counts must strictly increase).

Errors are always sent. A series none of whose instances was stored gets its errors and
nothing else: it never reaches steps 1-3.

Messages go to ``send(subject, payload, required) -> accepted``; a message the buffer
refused does not count as sent, so the final progress is never skipped because of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from oxidicom import telemetry
from oxidicom.notify import lonk
from oxidicom.series import SeriesRecord

#: ``send(subject, payload, required)``: hand a message over; False if it was dropped.
Send = Callable[[str, bytes, bool], bool]


@dataclass(slots=True)
class _SeriesProgress:
    subject: str
    #: The last count handed over, and when.
    sent: int = 0
    sent_at: float = 0.0


class ProgressPolicy:
    """Turns storage outcomes into LONK messages, rate-limited per series."""

    def __init__(
        self, root_subject: str, interval: float, send: Send, room: Callable[[], bool]
    ) -> None:
        self.root_subject = root_subject
        self.interval = interval
        self._send = send
        self._room = room
        #: association id -> SeriesInstanceUID -> progress
        self._associations: dict[str, dict[str, _SeriesProgress]] = {}

    def stored(self, record: SeriesRecord, now: float) -> None:
        """``record.count`` files of the series are stored (called once per file)."""
        series = self._associations.get(record.association_id)
        if series is None:
            series = self._associations[record.association_id] = {}
        progress = series.get(record.series_instance_uid)
        if progress is None:
            subject = lonk.subject_of(
                self.root_subject, record.pacs_name, record.series_instance_uid
            )
            progress = series[record.series_instance_uid] = _SeriesProgress(subject)
            required = True
        elif record.count <= progress.sent:
            return
        elif now - progress.sent_at < self.interval or not self._room():
            telemetry.lonk_dropped("rate_limited")
            return
        else:
            required = False
        if self._send(progress.subject, lonk.progress(record.count), required):
            progress.sent = record.count
            progress.sent_at = now

    def failed(self, pacs_name: str, series_instance_uid: str | None, message: str) -> None:
        """An instance could not be stored: an error on its series' subject."""
        subject = lonk.subject_of(self.root_subject, pacs_name, series_instance_uid)
        self._send(subject, lonk.error(message), True)

    def ended(self, association_id: str, records: Iterable[SeriesRecord]) -> None:
        """The association is over: final progress and done for each series it stored."""
        series = self._associations.pop(association_id, {})
        for record in records:
            progress = series.get(record.series_instance_uid)
            if progress is None:  # not seen through stored(): cannot happen, but be whole
                subject = lonk.subject_of(
                    self.root_subject, record.pacs_name, record.series_instance_uid
                )
                progress = _SeriesProgress(subject)
            if record.count > progress.sent:
                self._send(progress.subject, lonk.progress(record.count), True)
            self._send(progress.subject, lonk.done(), True)
