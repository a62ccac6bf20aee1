"""Series registrations: into the outbox first, then (with a broker) to CUBE's Celery queue.

:meth:`Registrations.register` is called when an association ends, once per series with
at least one stored file; it never waits: the outbox write (``fsync`` included) runs in the
loop's default executor, and the publisher picks the entry up from there.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from oxidicom import telemetry
from oxidicom.notify.celery import TASK_NAME, registration_kwargs
from oxidicom.notify.outbox import Outbox, Registration
from oxidicom.series import SeriesRecord

if TYPE_CHECKING:
    from oxidicom.notify.amqp import AmqpPublisher

log = logging.getLogger("oxidicom.registrations")


class Registrations:
    """The outbox and, when a broker is configured, its publisher."""

    def __init__(self, outbox: Outbox, queue_name: str, publisher: AmqpPublisher | None) -> None:
        self.outbox = outbox
        self.queue_name = queue_name
        self.publisher = publisher
        self.written = 0
        self._writes: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        """Create the outbox (OSError if impossible) and start publishing."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.outbox.prepare)
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

    def register(self, record: SeriesRecord) -> None:
        """Record the series' registration task (and publish it when possible)."""
        try:
            kwargs, warnings = registration_kwargs(record)
        except Exception:  # a bug: the series' files are stored, only the task is lost
            log.exception("cannot build the registration of series %s", record.series_instance_uid)
            return
        for warning in warnings:
            log.warning("%s", warning)
        registration = Registration.new(
            TASK_NAME,
            self.queue_name,
            kwargs,
            association_id=record.association_id,
            traceparent=telemetry.current_traceparent(),
        )
        write = asyncio.ensure_future(self._write(registration))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def _write(self, registration: Registration) -> None:
        loop = asyncio.get_running_loop()
        try:
            name = await loop.run_in_executor(None, self.outbox.add, registration)
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
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self.publisher is not None:
            await self.publisher.stop(timeout)
        loop = asyncio.get_running_loop()
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
