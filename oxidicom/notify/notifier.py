"""Tells the outside world: LONK progress over NATS, registrations through the outbox.

:class:`ChrisNotifier` implements :class:`~oxidicom.notify.base.Notifier`. Its callbacks
run on the event loop inside the receiver's hot path (``instance_stored`` once per file):
none of them waits, and only the first file of a series in an association touches the
disk (its journal entry, a few hundred bytes: see :mod:`oxidicom.notify.journal`).

The end of an association is worked off in the background, :data:`END_CHUNK` series at
a time: the registrations of a chunk in one executor trip, then their LONK final
progress and done, once the LONK queue has room, and the loop is given back between
chunks. An association of 20 000 single-instance series (an archive migration) so
never holds up the others, nor overflows the LONK queue.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Final

from oxidicom import telemetry
from oxidicom.background import Background
from oxidicom.dicom.head import HeadFields
from oxidicom.notify.celery import default_origin
from oxidicom.notify.journal import SeriesJournal
from oxidicom.notify.outbox import Outbox
from oxidicom.notify.progress import ProgressPolicy
from oxidicom.notify.registrations import Registrations
from oxidicom.series import SeriesRecord
from oxidicom.settings import Settings

if TYPE_CHECKING:
    from oxidicom.notify.nats import LonkPublisher

log = logging.getLogger("oxidicom.series")

#: At shutdown, once associations are over: time to publish pending registrations, then
#: time to send queued LONK messages.
REGISTRATION_SHUTDOWN_TIMEOUT: Final = 10.0
LONK_SHUTDOWN_TIMEOUT: Final = 5.0
#: Series of an ended association handled between two returns to the loop: about 3 ms
#: of loop time (two log lines and two LONK messages each), one executor trip.
END_CHUNK: Final = 64


class ChrisNotifier:
    """Storage outcomes in; LONK messages and registration tasks out."""

    def __init__(
        self,
        registrations: Registrations,
        lonk: LonkPublisher | None,
        progress: ProgressPolicy | None,
    ) -> None:
        self.registrations = registrations
        self.lonk = lonk
        self.progress = progress
        self._loop = asyncio.get_running_loop()
        #: The ends of associations being worked off.
        self._ends = Background()

    # -- Notifier --------------------------------------------------------------------------

    def series_starting(self, series: SeriesRecord, fields: HeadFields, series_dir: str) -> None:
        self.registrations.promise(series, fields, series_dir)

    def instance_stored(self, series: SeriesRecord) -> None:
        progress = self.progress
        if progress is not None:
            progress.stored(series, self._loop.time())

    def instance_failed(
        self, association_id: str, pacs_name: str, series_instance_uid: str | None, message: str
    ) -> None:
        if self.progress is not None:
            self.progress.failed(pacs_name, series_instance_uid, message)

    def association_ended(self, association_id: str, series: list[SeriesRecord]) -> None:
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

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Prepare the outbox (OSError if impossible); start the publishers."""
        await self.registrations.start()
        if self.lonk is not None:
            self.lonk.start()

    async def stop(self) -> None:
        """Finish the ends of associations, publish pending registrations and LONK
        messages (bounded time), then close."""
        await self._ends.drain()
        await self.registrations.stop(REGISTRATION_SHUTDOWN_TIMEOUT)
        if self.lonk is not None:
            await self.lonk.stop(LONK_SHUTDOWN_TIMEOUT)


def build_notifier(settings: Settings) -> ChrisNotifier:
    """The notifier the settings ask for (call inside the running loop).

    aio-pika and nats-py are imported only when configured: they are a quarter of a
    second of start-up that the embedded default does not need.
    """
    outbox = Outbox(Path(settings.outbox_dir))
    publisher = None
    if settings.amqp_address:
        from oxidicom.notify.amqp import AmqpPublisher

        publisher = AmqpPublisher(settings.amqp_address, outbox, origin=default_origin())
    journal = SeriesJournal(Path(settings.outbox_dir), Path(settings.files_root))
    registrations = Registrations(outbox, settings.queue_name, publisher, journal)
    lonk = progress = None
    if settings.dev_sleep and not settings.nats_address:
        log.warning("OXIDICOM_DEV_SLEEP has no effect without OXIDICOM_NATS_ADDRESS")
    if settings.nats_address:
        from oxidicom.notify.nats import LonkPublisher

        lonk = LonkPublisher(settings.nats_address, dev_sleep=settings.dev_sleep)
        progress = ProgressPolicy(
            settings.root_subject, settings.progress_interval, lonk.offer, lonk.room_for_optional
        )
    return ChrisNotifier(registrations, lonk, progress)
