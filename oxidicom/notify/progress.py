"""Which LONK messages a series gets, and when (CONTRACT section 4); pure, time passed in.

Per series (per series and association when series do not settle: see
:mod:`oxidicom.notify.settle`), in this order:

1. progress with count 1, always;
2. further progress, optional: at most one per ``interval`` per series, and only while the
   outgoing buffer has room for optional messages; counts strictly increase;
3. with its registration (at the end of the association when series do not settle),
   progress with the exact total, then done, both always. The final progress is left out
   only when the last progress handed over already carried the total (counts must
   strictly increase).

Errors are always sent. A series none of whose instances was stored gets its errors and
nothing else: it never reaches steps 1-3.

Messages go to ``send(subject, payload, required) -> accepted``; a message the buffer
refused does not count as sent, so the final progress is never skipped because of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from oxidicom import telemetry
from oxidicom.notify import lonk

#: ``send(subject, payload, required)``: hand a message over; False if it was dropped.
Send = Callable[[str, bytes, bool], bool]


class Tally(Protocol):
    """A series' count and what was told of it: an association's part of it
    (:class:`~oxidicom.storage.series.SeriesRecord`) or the whole of it across associations
    (:class:`~oxidicom.notify.settle.PendingSeries`)."""

    pacs_name: str
    series_instance_uid: str
    count: int
    progress_sent: int
    progress_at: float


class ProgressPolicy:
    """Turns storage outcomes into LONK messages, rate-limited per series.

    What was sent of a series is kept in its :class:`Tally` (``progress_sent``,
    ``progress_at``): nothing here grows with the number of series.
    """

    def __init__(
        self, root_subject: str, interval: float, send: Send, room: Callable[[], bool]
    ) -> None:
        self.root_subject = root_subject
        self.interval = interval
        self._send = send
        self._room = room

    def stored(self, record: Tally, now: float) -> None:
        """``record.count`` files of the series are stored (called once per file)."""
        if not record.progress_sent:
            required = True
        elif record.count <= record.progress_sent:
            return
        elif now - record.progress_at < self.interval or not self._room():
            telemetry.lonk_dropped("rate_limited")
            return
        else:
            required = False
        if self._send(self._subject(record), lonk.progress(record.count), required):
            record.progress_sent = record.count
            record.progress_at = now

    def failed(self, pacs_name: str, series_instance_uid: str | None, message: str) -> None:
        """An instance could not be stored: an error on its series' subject."""
        subject = lonk.subject_of(self.root_subject, pacs_name, series_instance_uid)
        self._send(subject, lonk.error(message), True)

    def ended(self, record: Tally) -> None:
        """The association is over: final progress and done for a series it stored."""
        subject = self._subject(record)
        if record.count > record.progress_sent:
            self._send(subject, lonk.progress(record.count), True)
        self._send(subject, lonk.done(), True)

    def _subject(self, record: Tally) -> str:
        return lonk.subject_of(self.root_subject, record.pacs_name, record.series_instance_uid)
