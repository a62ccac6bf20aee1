"""Series that span associations: held while stored into, settled once quiet.

A PACS may send one series over several associations, one after another or at once
(per SOP class, a cap on instances per association, a retry). CUBE registers a series
once, and checks ``ndicom`` against the files in its folder, so the receiver registers a
series only once no association of this process stores into it and it has been quiet for
``OXIDICOM_SERIES_SETTLE`` (0: each association's part when it ends, as the Rust receiver
does; :mod:`oxidicom.notify.notifier` keeps that path).

:class:`SeriesSettler` is the in-process side, pure, time passed in: a
:class:`PendingSeries` per series this process holds, counting the associations that
store into it (``open``) and the files stored (LONK progress goes on across associations),
and a FIFO of series due to settle. Every settle is ``interval`` after a release, so the
queue is in deadline order by construction; an entry that was opened again, or released
again later, is skipped when it reaches the head. The cross-process side (who of several
holders registers) is :meth:`oxidicom.notify.registrations.Registrations.settle`.

A series taken out to settle is no longer held: an association that stores into it
meanwhile starts a new incarnation with a journal entry of its own, and the settle then
finds that live hold and leaves the series to it.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass

from oxidicom.notify.journal import series_entry_name


@dataclass(slots=True, eq=False)
class PendingSeries:
    """One incarnation of this process's hold on a series (fields read by LONK progress)."""

    digest: str
    #: Its journal entry (:func:`~oxidicom.notify.journal.series_entry_name`).
    key: str
    pacs_name: str
    series_instance_uid: str
    #: The association that first stored into it (its registration names it too).
    association_id: str
    #: Associations of this process storing into it now.
    open: int = 0
    #: Files stored by this process's associations since it was first held.
    count: int = 0
    associations: int = 0
    progress_sent: int = 0
    progress_at: float = 0.0
    #: When it settles, once ``open`` is 0.
    due: float = 0.0


class SeriesSettler:
    """This process's holds, and the order in which they settle."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        #: The current incarnation of each held series, by digest.
        self._held: dict[str, PendingSeries] = {}
        self._due: deque[tuple[float, PendingSeries]] = deque()
        self._incarnations = itertools.count(1)

    def __len__(self) -> int:
        return len(self._held)

    def held(self, digest: str) -> PendingSeries | None:
        """The series' current incarnation, if this process holds it."""
        return self._held.get(digest)

    def new(
        self, digest: str, pacs_name: str, series_instance_uid: str, association_id: str
    ) -> PendingSeries:
        """A new incarnation, not held until :meth:`hold` (once its entry is written)."""
        key = series_entry_name(digest, next(self._incarnations))
        return PendingSeries(digest, key, pacs_name, series_instance_uid, association_id)

    def hold(self, series: PendingSeries) -> None:
        """Its journal entry is written: hold it."""
        self._held[series.digest] = series

    def opened(self, series: PendingSeries) -> None:
        """An association starts storing into it."""
        series.open += 1
        series.associations += 1

    def released(self, series: PendingSeries, now: float) -> bool:
        """An association that stored into it ended; True if the queue was empty."""
        series.open -= 1
        if series.open:
            return False
        was_empty = not self._due
        series.due = now + self.interval
        self._due.append((series.due, series))
        return was_empty

    def next_due(self) -> float | None:
        """When the first held series settles (None: none is waiting)."""
        due = self._due
        while due:
            at, series = due[0]
            if self._waiting(at, series):
                return at
            due.popleft()
        return None

    def take_due(self, now: float, limit: int) -> list[PendingSeries]:
        """Up to ``limit`` series due by ``now``, no longer held."""
        taken: list[PendingSeries] = []
        due = self._due
        while due and len(taken) < limit:
            at, series = due[0]
            if not self._waiting(at, series):
                due.popleft()
                continue
            if at > now:
                break
            due.popleft()
            del self._held[series.digest]
            taken.append(series)
        return taken

    def handed_over(self, series: PendingSeries) -> None:
        """A settled incarnation was left to a newer one of this process: carry its counts."""
        current = self._held.get(series.digest)
        if current is None or current is series:
            return
        current.count += series.count
        current.associations += series.associations
        if series.progress_sent > current.progress_sent:
            current.progress_sent = series.progress_sent
            current.progress_at = series.progress_at

    def _waiting(self, at: float, series: PendingSeries) -> bool:
        return series.open == 0 and series.due == at and self._held.get(series.digest) is series
