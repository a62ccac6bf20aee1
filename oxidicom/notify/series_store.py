"""Where holds on series meet, and who registers a settled series: the interface.

A series that spans associations is held by every receiver process storing into it, and
registered once, by one of them, once none holds it and it has been quiet (see
:mod:`oxidicom.notify.settle`). Two implementations decide who:

- :class:`OutboxSeriesStore`: processes that share one outbox folder on one host
  (``OXIDICOM_WORKERS``), judged under the outbox's ``flock``
  (:meth:`oxidicom.notify.registrations.Registrations.settle`); nothing to send anywhere.
- :class:`oxidicom.notify.series_redis.RedisSeriesStore`: replicas on several hosts, each
  with its own outbox, through a Redis-protocol server (``OXIDICOM_SERIES_STORE``).

The notifier calls :meth:`SeriesStore.hold`, :meth:`~SeriesStore.stored` and
:meth:`~SeriesStore.release` on the event loop in the hot path (they never wait), and
:meth:`~SeriesStore.settle` when a series it held is due. A store may decide a series
later than its settle (another replica still holds it): it then reports the outcome
through the ``later`` callback given to :meth:`~SeriesStore.start`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from oxidicom.notify.journal import JournalEntry
from oxidicom.notify.settle import PendingSeries

if TYPE_CHECKING:
    from oxidicom.notify.progress import ProgressPolicy
    from oxidicom.notify.registrations import Registrations

#: ``later(series, outcome)``: a series decided after its settle; the outcome as
#: :meth:`SeriesStore.settle` gives it.
Later = Callable[[PendingSeries, "int | str"], Awaitable[None]]
#: What :meth:`SeriesStore.settle` answers for a series that another replica still holds:
#: the outcome comes later, through ``later``.
WATCHED = "watched"


class SeriesStore(Protocol):
    """Holds on series across processes, and the decision of who registers."""

    #: True when the store counts a series' files across processes: LONK progress then
    #: comes from the store's count (see :meth:`stored`), not from this process's.
    counts_series: bool

    async def start(self, later: Later, progress: ProgressPolicy | None) -> None:
        """Connect (never fails: an unreachable store is retried in the background)."""
        ...

    def hold(self, series: PendingSeries, entry: JournalEntry) -> None:
        """An association of this process starts storing into the series."""
        ...

    def stored(self, series: PendingSeries) -> None:
        """One more file of the series is stored here."""
        ...

    def release(self, series: PendingSeries) -> None:
        """No association of this process stores into the series any more."""
        ...

    async def settle(
        self, chunk: list[PendingSeries], held_here: Callable[[str], bool]
    ) -> dict[str, int | str]:
        """These series are due here: the outcome of each, by journal key."""
        ...

    async def stop(self) -> None:
        """Release what is held, decide what can be, and disconnect."""
        ...


class OutboxSeriesStore:
    """Processes sharing one outbox folder: judged under its ``flock``, nothing sent."""

    counts_series = False

    def __init__(self, registrations: Registrations) -> None:
        self._registrations = registrations

    async def start(self, later: Later, progress: ProgressPolicy | None) -> None:
        return None

    def hold(self, series: PendingSeries, entry: JournalEntry) -> None:
        return None

    def stored(self, series: PendingSeries) -> None:
        return None

    def release(self, series: PendingSeries) -> None:
        return None

    async def settle(
        self, chunk: list[PendingSeries], held_here: Callable[[str], bool]
    ) -> dict[str, int | str]:
        return await self._registrations.settle([s.key for s in chunk], held_here)

    async def stop(self) -> None:
        return None
