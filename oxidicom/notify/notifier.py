"""Tells the outside world: LONK progress over NATS, registrations through the outbox.

:class:`ChrisNotifier` implements :class:`~oxidicom.notify.base.Notifier`. Its callbacks
run on the event loop inside the receiver's hot path (``instance_stored`` once per file):
none of them waits, and only the first file of a series in an association touches the
disk (its journal entry, a few hundred bytes: see :mod:`oxidicom.notify.journal`).

With ``OXIDICOM_SERIES_SETTLE`` at 0, the end of an association is worked off in the
background, :data:`END_CHUNK` series at a time: the registrations of a chunk in one
executor trip, then their LONK final progress and done, once the LONK queue has room, and
the loop is given back between chunks. An association of 20 000 single-instance series
(an archive migration) so never holds up the others, nor overflows the LONK queue.

Above 0, series span associations (:mod:`oxidicom.notify.settle`): the end of an
association only releases its series, and a background task settles each series once
it is due, :data:`END_CHUNK` at a time in the same way; LONK progress counts the whole
series, and its final progress and done follow the registration.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from oxidicom import telemetry
from oxidicom.dicom.head import HeadFields
from oxidicom.notify.broker_url import parse_broker_url, series_store_url
from oxidicom.notify.celery import default_origin
from oxidicom.notify.journal import JournalEntry, SeriesJournal, series_digest
from oxidicom.notify.outbox import Outbox
from oxidicom.notify.progress import ProgressPolicy
from oxidicom.notify.registrations import KEPT, Registrations
from oxidicom.notify.series_store import WATCHED, OutboxSeriesStore, SeriesStore
from oxidicom.notify.settle import PendingSeries, SeriesSettler
from oxidicom.notify.waiting import wait_event
from oxidicom.storage.series import SeriesRecord
from oxidicom.support.background import Background

if TYPE_CHECKING:
    from oxidicom.app.settings import Settings
    from oxidicom.notify.nats import LonkPublisher
    from oxidicom.notify.publisher import Publisher

log = logging.getLogger("oxidicom.series")

#: At shutdown, once associations are over: time to publish pending registrations, then
#: time to send queued LONK messages.
REGISTRATION_SHUTDOWN_TIMEOUT: Final = 10.0
LONK_SHUTDOWN_TIMEOUT: Final = 5.0
#: At shutdown, with a series store on another host: time to settle the held series, then
#: time to tell the store. A store that does not answer must not hold the stop up: what is
#: left stays in the journal, and the next start asks the store again.
STORE_SHUTDOWN_TIMEOUT: Final = 10.0
#: Series of an ended association handled between two returns to the loop: about 3 ms
#: of loop time (two log lines and two LONK messages each), one executor trip.
END_CHUNK: Final = 64
#: Series of an ended association released between two returns to the loop (about 1 ms).
RELEASE_CHUNK: Final = 1024


class ChrisNotifier:
    """Storage outcomes in; LONK messages and registration tasks out."""

    def __init__(
        self,
        registrations: Registrations,
        lonk: LonkPublisher | None,
        progress: ProgressPolicy | None,
        *,
        settle: float = 0.0,
        store: SeriesStore | None = None,
    ) -> None:
        self.registrations = registrations
        #: Where holds meet other processes' (by default: this outbox's processes).
        self.store: SeriesStore = store or OutboxSeriesStore(registrations)
        self.lonk = lonk
        self.progress = progress
        self._loop = asyncio.get_running_loop()
        #: The ends of associations being worked off.
        self._ends = Background()
        #: Series across associations (None: registered per association).
        self.settler = SeriesSettler(settle) if settle > 0 else None
        self._settling: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        #: The registration fields of each series held here (a store holds with them).
        self._entries: dict[str, JournalEntry] = {}

    # -- Notifier --------------------------------------------------------------------------

    def series_starting(
        self, series: SeriesRecord, fields: HeadFields, series_dir: str
    ) -> Callable[[], None] | None:
        settler = self.settler
        if settler is None:
            return self.registrations.promise(series, fields, series_dir)
        digest = series_digest(series_dir)
        pending = settler.held(digest)
        if pending is None:
            pending = settler.new(
                digest, series.pacs_name, series.series_instance_uid, series.association_id
            )
            entry = self.registrations.journal_entry(series, fields, series_dir)
            durable = self.registrations.promise(
                series, fields, series_dir, key=pending.key, entry=entry
            )
            settler.hold(pending)
            if self.store.counts_series:
                self._entries[digest] = entry
        else:
            series.journal_key = pending.key
            # Held already, maybe by an association whose first file is not answered yet:
            # this one waits for the entry's durability too (an fsync of a clean file).
            durable = self.registrations.journal.durable(pending.key)
        settler.opened(pending)
        if pending.open == 1 and self.store.counts_series:
            self.store.hold(pending, self._entries[digest])
        series.pending = pending
        return durable

    def instance_stored(self, series: SeriesRecord) -> None:
        pending = series.pending
        if pending is not None:
            pending.count += 1
            if self.store.counts_series:  # progress counts every replica's files
                self.store.stored(pending)
                return
        progress = self.progress
        if progress is not None:
            progress.stored(series if pending is None else pending, self._loop.time())

    def instance_failed(
        self, association_id: str, pacs_name: str, series_instance_uid: str | None, message: str
    ) -> None:
        if self.progress is not None:
            self.progress.failed(pacs_name, series_instance_uid, message)

    def association_ended(self, association_id: str, series: list[SeriesRecord]) -> None:
        settler = self.settler
        if settler is not None:
            self._release(settler, series[:RELEASE_CHUNK])
            if len(series) > RELEASE_CHUNK:
                self._ends.add(asyncio.ensure_future(self._release_rest(settler, series)))
            return
        if series:
            # The task runs in a copy of this context: its logs and spans are the
            # association's. The trace context is taken now, while it is current.
            end = self._end(association_id, series, telemetry.current_traceparent())
            self._ends.add(asyncio.ensure_future(end))

    async def _end(
        self, association_id: str, series: list[SeriesRecord], traceparent: str | None
    ) -> None:
        for start in range(0, len(series), END_CHUNK):
            chunk = series[start : start + END_CHUNK]
            try:
                await self.registrations.register(chunk, traceparent)
            except Exception:  # a bug: the journal still holds them for the next start
                log.exception("cannot register %d series", len(chunk))
            lonk = self.lonk
            for record in chunk:
                if not record.count:
                    continue  # promised, but none of its files was stored
                if lonk is not None:
                    await lonk.room()  # returns at once while there is room
                log.info(
                    "series finished: %d file(s) of %s from %s",
                    record.count,
                    record.series_instance_uid,
                    record.pacs_name,
                    extra={"association": association_id},
                )
                if self.progress is not None:
                    self.progress.ended(record)
            # Whatever the executor did: the loop is given back between two chunks.
            await asyncio.sleep(0)

    # -- series across associations ------------------------------------------------------

    def _release(self, settler: SeriesSettler, series: list[SeriesRecord]) -> None:
        now = self._loop.time()
        store = self.store
        for record in series:
            pending = record.pending
            if pending is None:
                continue
            if settler.released(pending, now):
                self._wake.set()
            if not pending.open:
                store.release(pending)

    async def _release_rest(self, settler: SeriesSettler, series: list[SeriesRecord]) -> None:
        for start in range(RELEASE_CHUNK, len(series), RELEASE_CHUNK):
            await asyncio.sleep(0)  # an archive migration's 20 000 series: in slices
            self._release(settler, series[start : start + RELEASE_CHUNK])

    async def _settle_due(self, settler: SeriesSettler) -> None:
        """Settle each held series once due; at a stop, every one at once."""
        loop = self._loop
        while True:
            due = settler.next_due()
            if due is None:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = due - loop.time()
            if delay > 0 and not self._stopping:
                # Series released later are due later: only a stop needs waking us.
                self._wake.clear()
                await wait_event(self._wake, delay)
                continue
            now = float("inf") if self._stopping else loop.time()
            chunk = settler.take_due(now, END_CHUNK)
            for pending in chunk:
                if settler.held(pending.digest) is None:
                    self._entries.pop(pending.digest, None)
            try:
                outcomes = await self.store.settle(
                    chunk, lambda digest: settler.held(digest) is not None
                )
            except Exception:  # a bug: the journal still holds them for the next start
                log.exception("cannot settle %d series", len(chunk))
                outcomes = {}
            for pending in chunk:
                await self._settled(settler, pending, outcomes.get(pending.key))
            await asyncio.sleep(0)  # the loop is given back between two chunks

    async def _settled_later(self, pending: PendingSeries, outcome: int | str) -> None:
        """A series that the store decided after its settle (another replica held it)."""
        if self.settler is not None:
            await self._settled(self.settler, pending, outcome)

    async def _settled(
        self, settler: SeriesSettler, pending: PendingSeries, outcome: int | str | None
    ) -> None:
        if outcome == WATCHED:
            return  # another replica holds it: the store tells us later
        if not isinstance(outcome, int) and outcome != KEPT:
            # Another holder (another process, or a newer hold of ours) registers it.
            log.info(
                "series %s from %s: %d file(s) stored here, registered by another holder",
                pending.series_instance_uid,
                pending.pacs_name,
                pending.count,
                extra={"association": pending.association_id},
            )
            settler.handed_over(pending)
            return
        if isinstance(outcome, int):
            pending.count = outcome  # the final progress is the series' whole count
        if self.lonk is not None:
            await self.lonk.room()
        log.info(
            "series finished: %d file(s) of %s from %s (%d association(s) here)",
            pending.count,
            pending.series_instance_uid,
            pending.pacs_name,
            pending.associations,
            extra={"association": pending.association_id},
        )
        if self.progress is not None:
            self.progress.ended(pending)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Prepare the outbox (OSError if impossible); start the publishers."""
        await self.registrations.start()
        if self.lonk is not None:
            self.lonk.start()
        if self.settler is not None:
            await self.store.start(self._settled_later, self.progress)
            self._settling = asyncio.create_task(
                self._settle_due(self.settler), name="series-settle"
            )

    async def announce(self) -> None:
        """Once the listener is bound: say what earlier runs left waiting in the outbox."""
        await self.registrations.announce_waiting()

    async def stop(self) -> None:
        """Finish the ends of associations, settle every held series, publish pending
        registrations and LONK messages (bounded time), then close."""
        await self._ends.drain()
        if self._settling is not None:
            self._stopping = True
            self._wake.set()
            if isinstance(self.store, OutboxSeriesStore):  # local files: no bound needed
                await self._settling
                await self.store.stop()
            else:
                await self._bounded("settling the held series", self._settling)
                await self._bounded("telling the series store", self.store.stop())
        await self.registrations.stop(REGISTRATION_SHUTDOWN_TIMEOUT)
        if self.lonk is not None:
            await self.lonk.stop(LONK_SHUTDOWN_TIMEOUT)

    async def _bounded(self, what: str, work: Awaitable[None]) -> None:
        """``work`` for at most :data:`STORE_SHUTDOWN_TIMEOUT` s; then it is cancelled."""
        try:
            await asyncio.wait_for(work, STORE_SHUTDOWN_TIMEOUT)
        except TimeoutError:
            log.warning(
                "stopping: %s took more than %g s; cancelled (the journal keeps what is"
                " left, and the next start asks the series store again)",
                what,
                STORE_SHUTDOWN_TIMEOUT,
            )


def build_notifier(settings: Settings, family: str = "") -> ChrisNotifier:
    """The notifier the settings ask for (call inside the running loop).

    aio-pika, redis-py and nats-py are imported only when configured: they are a quarter
    of a second of start-up that the embedded default does not need.
    """
    outbox = Outbox(Path(settings.outbox_dir))
    publisher = build_publisher(settings.celery_broker, outbox) if settings.celery_broker else None
    journal = SeriesJournal(
        Path(settings.outbox_dir), Path(settings.files_root), fsync=settings.fsync, family=family
    )
    registrations = Registrations(outbox, settings.queue_name, publisher, journal)
    store: SeriesStore | None = None
    store_url = series_store_url(settings)
    if store_url is not None and settings.series_settle > 0:
        from oxidicom.notify.series_redis import RedisSeriesStore

        journal.adopt_series = True
        store = RedisSeriesStore(
            store_url, registrations, settle=settings.series_settle, lease=settings.series_lease
        )
    lonk = progress = None
    if settings.dev_sleep and not settings.nats_address:
        log.warning("OXIDICOM_DEV_SLEEP has no effect without OXIDICOM_NATS_ADDRESS")
    if settings.nats_address:
        from oxidicom.notify.nats import LonkPublisher

        lonk = LonkPublisher(settings.nats_address, dev_sleep=settings.dev_sleep)
        progress = ProgressPolicy(
            settings.root_subject, settings.progress_interval, lonk.offer, lonk.room_for_optional
        )
    return ChrisNotifier(registrations, lonk, progress, settle=settings.series_settle, store=store)


def build_publisher(url: str, outbox: Outbox) -> Publisher:
    """The publisher of the broker kind ``url`` names (a URL the settings checked)."""
    if parse_broker_url(url).kind == "redis":
        from oxidicom.notify.redis_publisher import RedisPublisher

        return RedisPublisher(url, outbox, origin=default_origin())
    from oxidicom.notify.amqp import AmqpPublisher

    return AmqpPublisher(url, outbox, origin=default_origin())
