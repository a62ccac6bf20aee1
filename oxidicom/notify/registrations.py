"""Series registrations: promised in the journal, then into the outbox, then to CUBE's queue.

A registration is *promised* when the first file of a series in an association is about
to be placed (:meth:`Registrations.promise`): its journal entry is written first, and
a journal that cannot be written refuses that file (see :mod:`oxidicom.notify.journal`).
When the association ends, :meth:`Registrations.register` turns a batch of promises into
outbox entries in one trip to the loop's default executor (the journal entries read
back, the outbox files written, one directory ``fsync``, then the journal entries
removed), and the publisher picks the entries up from there.

A series that spans associations (``OXIDICOM_SERIES_SETTLE`` above 0) is promised once
per process and incarnation (:meth:`Registrations.promise` with its hold's key) and
*settled* (:meth:`Registrations.settle`) once it has been quiet: under the outbox-wide
settle lock, it is left to another holder if one lives, else registered with ``ndicom``
counted from the files in its folder (see :mod:`oxidicom.notify.journal`).

An outbox that cannot be written (full, read-only, failing) loses nothing: the
promises stay in the journal and the write is retried with backoff (1 s doubling to
60 s) until it succeeds; at a stop what is still unwritten stays in the journal, and
the next start registers it. Meanwhile the metric ``oxidicom.registrations.unwritten``
counts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from oxidicom import telemetry
from oxidicom.dicom.head import HeadFields
from oxidicom.notify.celery import TASK_NAME, registration_kwargs
from oxidicom.notify.journal import (
    JournalEntry,
    SeriesHolds,
    SeriesJournal,
    count_series_files,
    digest_of_key,
)
from oxidicom.notify.outbox import Outbox, Registration
from oxidicom.notify.waiting import wait_event
from oxidicom.storage.series import SeriesRecord

if TYPE_CHECKING:
    from oxidicom.notify.publisher import Publisher

log = logging.getLogger("oxidicom.registrations")

#: Backoff of the outbox writes that failed: the first retry, and the longest wait.
RETRY_FIRST: Final = 1.0
RETRY_MAX: Final = 60.0
#: Registrations written per executor trip when retrying.
_RETRY_BATCH: Final = 256
#: Executor trips that write the registrations of one chunk of series, side by side.
_PARALLEL_TRIPS: Final = 4


@dataclass(frozen=True, slots=True)
class _Promise:
    """A registration to write: its journal entry, and the files stored.

    ``ndicom`` None: a settled series (its entry's key names it): registered under the
    settle lock with the files in its folder, unless another holder lives.
    """

    journal_key: str
    ndicom: int | None
    traceparent: str | None


#: What :meth:`Registrations.settle` did with a series: registered (with this ``ndicom``),
#: left to another holder, or kept in the journal for the outbox retry.
HANDED_OVER = "handed_over"
KEPT = "kept"


@dataclass(slots=True)
class _Batch:
    """What one executor trip did with a list of promises."""

    written: list[tuple[str, Registration]]
    #: Not written (the outbox failed at the first of them), and why.
    unwritten: list[_Promise]
    error: OSError | None = None
    #: Settled series by journal key: the ``ndicom`` registered, or :data:`HANDED_OVER`.
    settled: dict[str, int | str] = field(default_factory=dict)
    #: Their outbox entries are written, but the directory fsync failed: their journal
    #: entries stay (a restart registers them again, which CUBE tolerates).
    unsynced: OSError | None = None


class Registrations:
    """The journal, the outbox and, when a broker is configured, its publisher."""

    def __init__(
        self,
        outbox: Outbox,
        queue_name: str,
        publisher: Publisher | None,
        journal: SeriesJournal,
        *,
        retry_first: float = RETRY_FIRST,
        retry_max: float = RETRY_MAX,
    ) -> None:
        self.outbox = outbox
        self.queue_name = queue_name
        self.publisher = publisher
        self.journal = journal
        self.retry_first = retry_first
        self.retry_max = retry_max
        self._journal_keys = itertools.count(1)
        #: Promises whose outbox write failed, oldest first, and the task retrying them.
        self._unwritten: list[_Promise] = []
        self._retrying: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        #: Whether this process got to serve (its listener bound): only then does it
        #: speak of the outbox, which may be a running receiver's.
        self._announced = False

    @property
    def unwritten(self) -> int:
        """Registrations waiting for the outbox to be writable again."""
        return len(self._unwritten)

    async def start(self) -> None:
        """Create the outbox (OSError if impossible) and start publishing."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.outbox.prepare)
        await loop.run_in_executor(None, self.journal.prepare)
        recovered = await loop.run_in_executor(None, self.journal.recover, self.outbox)
        if recovered:
            log.warning(
                "%d series registration(s) left in the journal by an earlier run (killed,"
                " or stopped while its outbox could not be written) are in the outbox now",
                recovered,
            )
        if self.publisher is not None:
            self.publisher.start()
        # Read at each metric export, in the SDK's own thread: a listing of the outbox is
        # the truth (entries of sibling processes included) and costs nothing to the loop.
        outbox = self.outbox
        telemetry.observe_outbox_depth(lambda: len(outbox.names()))

    async def announce_waiting(self) -> None:
        """Say what waits in the outbox, and whose it is: once the listener is ours.

        Called once the port is bound, so that a second start that fails on the port
        says nothing of the running receiver's registrations. Another live receiver
        sharing the outbox (a worker, a replica) may have written some of them.
        """
        self._announced = True
        loop = asyncio.get_running_loop()
        waiting = len(await loop.run_in_executor(None, self.outbox.names))
        if not waiting:
            return
        others = await loop.run_in_executor(None, self.journal.running_others)
        broker = "" if self.publisher is not None else " (no Celery broker configured)"
        if others:
            log.info(
                "%d registration(s) wait in the outbox %s, which %d other running receiver"
                " process(es) share: theirs, or from an earlier run%s",
                waiting,
                self.outbox.directory,
                others,
                broker,
            )
        else:
            log.info(
                "%d registration(s) from an earlier run wait in the outbox %s%s",
                waiting,
                self.outbox.directory,
                broker,
            )

    # -- on the loop, in the hot path ------------------------------------------------------

    def journal_entry(
        self, record: SeriesRecord, fields: HeadFields, series_dir: str
    ) -> JournalEntry:
        """What the journal keeps of a series: its registration's fields (pure)."""
        kwargs, warnings = registration_kwargs(fields, record.pacs_name, series_dir, 1)
        for warning in warnings:
            log.warning("%s", warning)
        return JournalEntry(
            self.queue_name,
            kwargs,
            association_id=record.association_id,
            traceparent=telemetry.current_traceparent(),
        )

    def promise(
        self,
        record: SeriesRecord,
        fields: HeadFields,
        series_dir: str,
        key: str | None = None,
        entry: JournalEntry | None = None,
    ) -> Callable[[], None] | None:
        """The first file of a series in an association is about to be placed: journal it.

        ``key``: the entry's name (a settled series' hold); by default one of its own for
        this association. ``entry``: made by :meth:`journal_entry` when the caller needs
        it too. Raises (OSError when the journal cannot be written): the file
        must then be refused. A few hundred bytes written on the loop, once per series and
        association (once per series and process for a settled series). Returns what
        makes the entry durable (with fsync; see SeriesJournal.record), or None.
        """
        if entry is None:
            entry = self.journal_entry(record, fields, series_dir)
        if key is None:
            key = f"{record.association_id}-{next(self._journal_keys)}"
        durable = self.journal.record(key, entry)
        record.journal_key = key
        return durable

    # -- at the end of an association -----------------------------------------------------

    async def register(self, records: list[SeriesRecord], traceparent: str | None) -> None:
        """Write the registrations of these ended series (a few executor trips).

        A series promised but with no stored file only has its journal entry withdrawn.
        What the outbox refuses is kept and retried in the background: this returns
        once the trip is over, whatever the outbox did.
        """
        promises = [
            _Promise(r.journal_key, r.count, traceparent)
            for r in records
            if r.journal_key is not None
        ]
        if not promises:
            return
        loop = asyncio.get_running_loop()
        # A few trips side by side: each file is fsynced, and concurrent fsyncs share
        # the filesystem's journal commits (one at a time, a disk is 3 x slower).
        size = -(-len(promises) // _PARALLEL_TRIPS)
        batches = await asyncio.gather(
            *(
                loop.run_in_executor(None, self._write_batch, promises[i : i + size])
                for i in range(0, len(promises), size)
            )
        )
        unwritten: list[_Promise] = []
        error = None
        for batch in batches:
            self._written(batch)
            unwritten += batch.unwritten
            error = error or batch.error
        if unwritten:
            self._keep(unwritten, error)

    async def settle(
        self, keys: list[str], held_here: Callable[[str], bool]
    ) -> dict[str, int | str]:
        """Settle these series (their holds' journal keys): one executor trip.

        ``held_here(digest)``: whether this process holds the series again (a newer
        hold, in memory). Returns what became of each: the ``ndicom`` registered,
        :data:`HANDED_OVER` (another holder lives, or it has no file), or :data:`KEPT` (the
        outbox refused it: retried in the background like any other).
        """
        promises = [_Promise(key, None, None) for key in keys]
        loop = asyncio.get_running_loop()
        batch = await loop.run_in_executor(None, self._write_batch, promises, held_here)
        return self._settled(batch)

    async def register_claimed(self, keys: list[str]) -> dict[str, int | str]:
        """Register these series (journal keys), decided elsewhere: one executor trip.

        For a series store that decided this process registers them: no outbox lock,
        ``ndicom`` counted from the files in each folder. Outcomes as :meth:`settle`.
        """
        promises = [_Promise(key, None, None) for key in keys]
        loop = asyncio.get_running_loop()
        batch = await loop.run_in_executor(None, self._write_batch_locked, promises, None, None)
        return self._settled(batch)

    def _settled(self, batch: _Batch) -> dict[str, int | str]:
        """What a trip of settled series did, by journal key; the unwritten kept for retry."""
        self._written(batch)
        outcomes: dict[str, int | str] = dict(batch.settled)
        for promise in batch.unwritten:
            outcomes[promise.journal_key] = KEPT
        if batch.unwritten:
            self._keep(batch.unwritten, batch.error)
        return outcomes

    async def forget(self, keys: list[str]) -> None:
        """Withdraw these journal entries: their series are registered by another replica."""
        if keys:
            await asyncio.get_running_loop().run_in_executor(None, self._forget_all, keys)

    def _forget_all(self, keys: list[str]) -> None:
        for key in keys:
            with contextlib.suppress(OSError):
                self.journal.forget(key)

    def _write_batch(
        self, promises: list[_Promise], held_here: Callable[[str], bool] | None = None
    ) -> _Batch:
        # In the executor. Settled series are judged and registered under the settle lock,
        # so that of two holders deciding at once, one registers and one hands over. Our
        # own newer holds come from memory when the caller knows them (``held_here``), from
        # a listing of our folder otherwise (a retry).
        if any(p.ndicom is None for p in promises):
            with self.journal.settling():
                holds = self.journal.holds(own=held_here is None)
                return self._write_batch_locked(promises, holds, held_here)
        return self._write_batch_locked(promises, None, None)

    def _write_batch_locked(
        self,
        promises: list[_Promise],
        holds: SeriesHolds | None,
        held_here: Callable[[str], bool] | None,
    ) -> _Batch:
        # Outbox entries first, one directory fsync, then (they are durable) the journal
        # entries go. A crash in between registers twice, never not.
        journal, outbox = self.journal, self.outbox
        batch = _Batch([], [])
        done: list[str] = []
        #: Entries of dead holders that the registrations written here stand for.
        adopted: list[Path] = []
        for index, promise in enumerate(promises):
            ndicom = promise.ndicom
            dead: list[Path] = []
            if ndicom is None and holds is not None:
                digest = digest_of_key(promise.journal_key) or ""
                others = holds.others(digest, journal.path_of(promise.journal_key))
                if any(hold.live for hold in others) or (held_here and held_here(digest)):
                    batch.settled[promise.journal_key] = HANDED_OVER
                    done.append(promise.journal_key)
                    continue
                dead = [hold.path for hold in others]
            if ndicom == 0:
                done.append(promise.journal_key)
                continue
            try:
                entry = journal.read(promise.journal_key)
            except FileNotFoundError:
                log.error("journal entry %s is gone: not registered", promise.journal_key)
                continue
            except ValueError as error:
                log.error(
                    "journal entry %s is unreadable (%s): not registered",
                    promise.journal_key,
                    error,
                )
                continue
            except OSError as error:
                batch.unwritten, batch.error = promises[index:], error
                break
            if ndicom is None:
                ndicom = count_series_files(journal.files_root / entry.kwargs["path"])
                if not ndicom:  # every file of it is gone: nothing to register
                    batch.settled[promise.journal_key] = HANDED_OVER
                    done.append(promise.journal_key)
                    continue
                batch.settled[promise.journal_key] = ndicom
            registration = Registration.new(
                TASK_NAME,
                entry.queue,
                entry.kwargs | {"ndicom": ndicom},
                association_id=entry.association_id,
                traceparent=promise.traceparent or entry.traceparent,
            )
            try:
                name = outbox.add(registration, sync_directory=False)
            except OSError as error:
                batch.unwritten, batch.error = promises[index:], error
                break
            batch.written.append((name, registration))
            done.append(promise.journal_key)
            adopted += dead
        if batch.written:
            try:
                outbox.sync()
            except OSError as error:
                batch.unsynced = error
                return batch
        for key in done:
            with contextlib.suppress(OSError):  # left: registered again at the next start
                journal.forget(key)
        for path in adopted:
            with contextlib.suppress(OSError):
                path.unlink()
        return batch

    def _written(self, batch: _Batch) -> None:
        if batch.unsynced is not None:
            log.warning(
                "cannot fsync the outbox %s (%s): %d registration(s) also stay in the journal",
                self.outbox.directory,
                batch.unsynced,
                len(batch.written),
            )
        publisher = self.publisher
        for name, registration in batch.written:
            kwargs = registration.kwargs
            log.info(
                "registration of series %s (%s file(s)) in the outbox: task %s, %s",
                kwargs["SeriesInstanceUID"],
                kwargs["ndicom"],
                registration.task_id,
                name,
            )
            # The folder names the patient: DEBUG only (no patient data above it).
            log.debug("series %s is in %s", kwargs["SeriesInstanceUID"], kwargs["path"])
            if publisher is not None:
                publisher.submit(name)

    # -- what the outbox refused -------------------------------------------------------------

    def _keep(self, promises: list[_Promise], error: OSError | None) -> None:
        if not self._unwritten:
            log.error(
                "cannot write %d registration(s) to the outbox %s: %s; they stay in the"
                " series journal, and the write is retried (after %g s, then at most every"
                " %g s) until it succeeds",
                len(promises),
                self.outbox.directory,
                error,
                self.retry_first,
                self.retry_max,
            )
        self._unwritten.extend(promises)
        telemetry.registrations_unwritten(len(self._unwritten))
        if self._retrying is None:
            self._retrying = asyncio.create_task(self._retry(), name="outbox-retry")

    async def _retry(self) -> None:
        delay = self.retry_first
        written = 0
        try:
            while self._unwritten:
                await wait_event(self._stopping, delay)
                if self._stopping.is_set():
                    return  # stop() makes the last attempt
                progressed = await self._write_unwritten()
                written += progressed
                delay = self.retry_first if progressed else min(delay * 2, self.retry_max)
            log.warning(
                "the outbox %s is writable again: %d delayed registration(s) written",
                self.outbox.directory,
                written,
            )
        finally:
            self._retrying = None

    async def _write_unwritten(self) -> int:
        """Try the oldest unwritten promises once; return how many were written."""
        loop = asyncio.get_running_loop()
        written = 0
        while self._unwritten:
            promises = self._unwritten[:_RETRY_BATCH]
            batch = await loop.run_in_executor(None, self._write_batch, promises)
            done = len(promises) - len(batch.unwritten)
            del self._unwritten[:done]
            telemetry.registrations_unwritten(len(self._unwritten))
            self._written(batch)
            written += done
            if batch.unwritten:
                log.debug("the outbox is still not writable: %s", batch.error)
                break
        return written

    # -- life cycle --------------------------------------------------------------------------

    async def stop(self, timeout: float) -> None:
        """Finish outbox writes, publish what can be published in ``timeout`` s, stop.

        Call it once no association runs and their ends are registered.
        """
        self._stopping.set()
        if self._retrying is not None:
            await self._retrying
        if self._unwritten:
            await self._write_unwritten()
        if self._unwritten:
            log.error(
                "%d registration(s) could not be written to the outbox %s: they stay in the"
                " series journal %s and are registered at the next start",
                len(self._unwritten),
                self.outbox.directory,
                self.journal.work_dir.path,
            )
        if self.publisher is not None:
            await self.publisher.stop(timeout)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.journal.release)
        if not self._announced:
            return  # a start that failed (port in use): what waits is not ours to report
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
