"""Series registrations: into the outbox first, then (with a broker) to CUBE's Celery queue.

:meth:`Registrations.register` is called when an association ends, once per series with
at least one stored file; it never waits: the outbox write (``fsync`` included) runs in the
loop's default executor, and the publisher picks the entry up from there.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING, Any

from oxidicom import telemetry
from oxidicom.background import Background
from oxidicom.notify.celery import TASK_NAME, registration_kwargs
from oxidicom.notify.journal import JournalEntry, SeriesJournal
from oxidicom.notify.outbox import Outbox, Registration
from oxidicom.series import SeriesRecord

if TYPE_CHECKING:
    from oxidicom.notify.amqp import AmqpPublisher

log = logging.getLogger("oxidicom.registrations")


class Registrations:
    """The outbox and, when a broker is configured, its publisher."""

    def __init__(
        self,
        outbox: Outbox,
        queue_name: str,
        publisher: AmqpPublisher | None,
        journal: SeriesJournal | None = None,
    ) -> None:
        self.outbox = outbox
        self.queue_name = queue_name
        self.publisher = publisher
        self.journal = journal
        self.written = 0
        self._writes = Background()
        #: (association id, SeriesInstanceUID) -> its journal entry
        self._journaled: dict[tuple[str, str], str] = {}
        self._journal_keys = itertools.count(1)

    async def start(self) -> None:
        """Create the outbox (OSError if impossible) and start publishing."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.outbox.prepare)
        if self.journal is not None:
            await loop.run_in_executor(None, self.journal.prepare)
            recovered = await loop.run_in_executor(None, self.journal.recover, self.outbox)
            if recovered:
                log.warning(
                    "%d series of associations cut by the death of an earlier run are"
                    " registered from its journal",
                    recovered,
                )
        waiting = len(await loop.run_in_executor(None, self.outbox.names))
        if waiting:
            log.info(
                "%d registration(s) from an earlier run wait in the outbox %s%s",
                waiting,
                self.outbox.directory,
                "" if self.publisher is not None else " (no AMQP broker configured)",
            )
        if self.publisher is not None:
            self.publisher.start()
        # Read at each metric export, in the SDK's own thread: a listing of the outbox is
        # the truth (entries of sibling processes included) and costs nothing to the loop.
        outbox = self.outbox
        telemetry.observe_outbox_depth(lambda: len(outbox.names()))

    def series_started(self, record: SeriesRecord) -> None:
        """The first file of a series in an association is stored: journal its registration.

        Called before that file's success status is sent, on the loop: a few hundred
        bytes written once per series and association (see :mod:`oxidicom.notify.journal`).
        """
        journal = self.journal
        if journal is None:
            return
        key = f"{record.association_id}-{next(self._journal_keys)}"
        try:
            kwargs, _ = registration_kwargs(record)
            entry = JournalEntry(
                self.queue_name,
                kwargs,
                association_id=record.association_id,
                traceparent=telemetry.current_traceparent(),
            )
            journal.record(key, entry)
        except Exception as error:  # the file is stored; only a crash could lose its task
            log.warning(
                "cannot journal series %s: %s", record.series_instance_uid, error, exc_info=True
            )
            return
        self._journaled[(record.association_id, record.series_instance_uid)] = key

    def register(self, record: SeriesRecord) -> None:
        """Record the series' registration task (and publish it when possible)."""
        journal_key = self._journaled.pop((record.association_id, record.series_instance_uid), None)
        try:
            kwargs, warnings = registration_kwargs(record)
        except Exception:  # a bug: the series' files are stored, only the task is lost
            log.exception("cannot build the registration of series %s", record.series_instance_uid)
            return
        for warning in warnings:
            log.warning("%s", warning)
        registration = self._registration(record, kwargs)
        write = asyncio.ensure_future(self._write(registration, journal_key))
        self._writes.add(write)

    def _registration(self, record: SeriesRecord, kwargs: dict[str, Any]) -> Registration:
        return Registration.new(
            TASK_NAME,
            self.queue_name,
            kwargs,
            association_id=record.association_id,
            traceparent=telemetry.current_traceparent(),
        )

    def _add(self, registration: Registration, journal_key: str | None) -> str:
        # In the executor: the outbox entry first, then (it is durable) the journal's goes.
        name = self.outbox.add(registration)
        if journal_key is not None and self.journal is not None:
            self.journal.forget(journal_key)
        return name

    async def _write(self, registration: Registration, journal_key: str | None = None) -> None:
        loop = asyncio.get_running_loop()
        try:
            name = await loop.run_in_executor(None, self._add, registration, journal_key)
        except OSError as error:
            kwargs = registration.kwargs
            log.error(
                "cannot write the registration of series %s (%s file(s), task %s) to the"
                " outbox %s: %s; CUBE will not know about it",
                kwargs["SeriesInstanceUID"],
                kwargs["ndicom"],
                registration.task_id,
                self.outbox.directory,
                error,
            )
            log.debug("lost registration: %r", kwargs)
            return
        self.written += 1
        log.info(
            "registration of series %s (%s file(s)) in the outbox: task %s, %s",
            registration.kwargs["SeriesInstanceUID"],
            registration.kwargs["ndicom"],
            registration.task_id,
            name,
        )
        if self.publisher is not None:
            self.publisher.submit(name)

    async def stop(self, timeout: float) -> None:
        """Finish outbox writes, publish what can be published in ``timeout`` s, stop."""
        await self._writes.drain()
        if self.publisher is not None:
            await self.publisher.stop(timeout)
        loop = asyncio.get_running_loop()
        if self.journal is not None:
            await loop.run_in_executor(None, self.journal.release)
        # The depth stays observed: the last metric export, after this, reports it.
        left = len(await loop.run_in_executor(None, self.outbox.names))
        if left:
            log.log(
                logging.WARNING if self.publisher is not None else logging.INFO,
                "%d registration(s) left in the outbox %s%s",
                left,
                self.outbox.directory,
                "; they are sent at the next start" if self.publisher is not None else "",
            )
