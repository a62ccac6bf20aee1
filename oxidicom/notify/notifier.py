"""Tells the outside world: LONK progress over NATS, registrations through the outbox.

:class:`ChrisNotifier` implements :class:`~oxidicom.notify.base.Notifier`. Its three
callbacks run on the event loop inside the receiver's hot path (``instance_stored`` once per
file): none of them waits, and only the first file of a series in an association touches
the disk (its journal entry, a few hundred bytes: see :mod:`oxidicom.notify.journal`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Final

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

    # -- Notifier --------------------------------------------------------------------------

    def instance_stored(self, series: SeriesRecord) -> None:
        if series.count == 1:
            self.registrations.series_started(series)
        progress = self.progress
        if progress is not None:
            progress.stored(series, self._loop.time())

    def instance_failed(
        self, association_id: str, pacs_name: str, series_instance_uid: str | None, message: str
    ) -> None:
        if self.progress is not None:
            self.progress.failed(pacs_name, series_instance_uid, message)

    def association_ended(self, association_id: str, series: list[SeriesRecord]) -> None:
        for record in series:
            log.info(
                "series finished: %d file(s) of %s from %s",
                record.count,
                record.series_instance_uid,
                record.pacs_name,
                extra={"association": association_id},
            )
            # The folder names the patient: DEBUG only (no patient data above it).
            log.debug(
                "series %s is in %s",
                record.series_instance_uid,
                record.series_dir,
                extra={"association": association_id},
            )
            self.registrations.register(record)
        if self.progress is not None:
            self.progress.ended(association_id, series)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Prepare the outbox (OSError if impossible); start the publishers."""
        await self.registrations.start()
        if self.lonk is not None:
            self.lonk.start()

    async def stop(self) -> None:
        """Publish pending registrations and LONK messages (bounded time), then close."""
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
