"""One STOW-RS request as the unit an association is for C-STORE.

A request gets an id like an association's, its own series accumulator and its own
``pacs_name``; each part goes through the same storage writer (head parsed as it
streams, temporary file, fsync per setting, rename) and the same notifier hooks as a
C-STORE data set; when the request ends, however it ends, its series are handed to
``Notifier.association_ended`` exactly once. This mirrors what
:class:`oxidicom.scp.association.Association` does in ``_placing``, ``_stored``, ``_refuse``
and ``_end``, with HTTP parts instead of DIMSE messages.

Nothing here knows HTTP: a part is an async iterator of byte chunks, so the pure logic
is tested without a server (tests/dicomweb/test_dicomweb_ingest.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

from oxidicom.dicom.errors import DatasetError
from oxidicom.dicom.head import HeadFields
from oxidicom.dicom.uids import VERIFICATION_SOP_CLASS
from oxidicom.dicomweb.meta import FileMeta, MetaError, MetaReader
from oxidicom.dicomweb.response import PartOutcome
from oxidicom.dicomweb.telemetry import RequestTelemetry
from oxidicom.dimse.commands import Status
from oxidicom.notify.base import Notifier
from oxidicom.scp.acceptance import AcceptancePolicy
from oxidicom.storage.series import SeriesAccumulator
from oxidicom.storage.writer import InstanceWriter, StorageError, Store, StoredInstance
from oxidicom.telemetry import exhaustion
from oxidicom.telemetry.logs import CURRENT_ASSOCIATION

log = logging.getLogger("oxidicom.dicomweb")

#: FailureReason values of PS3.18 Table I.2-2 that the STOW-RS service sends besides the
#: statuses the storage path already has (A700, A900, C000, C001).
REFERENCED_TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
REFERENCED_SOP_CLASS_NOT_SUPPORTED = 0x0122
#: Ours, in the Cxxx "cannot understand" class (PS3.18 I.2.2 allows implementation codes;
#: the conformance statement lists it): the instance is not of the study in the URL.
STUDY_INSTANCE_UID_MISMATCH = 0xC409
_PROCESSING_FAILURE = 0x0110
#: Refused parts of a request logged one by one; the rest are counted, by status, in
#: one line at its end (a request of 10 000 bad parts is 11 lines, not 10 000).
LOGGED_REFUSALS = 10
_T = TypeVar("_T")


class StudyMismatchError(StorageError):
    """The instance belongs to another study than the request's path names."""

    status = STUDY_INSTANCE_UID_MISMATCH


class PartRefused(Exception):
    """A part refused before any byte of it is written."""

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


class StorageWaits(Protocol):
    """Told when a request waits for our storage (its client is not judged meanwhile)."""

    def storage_wait_began(self, now: float) -> None: ...

    def storage_wait_ended(self, now: float) -> None: ...


class StowRequest:
    """The parts of one request, stored one after the other, reported together."""

    def __init__(
        self,
        *,
        store: Store,
        notifier: Notifier,
        policy: AcceptancePolicy,
        telemetry: RequestTelemetry,
        pacs_name: str,
        study_instance_uid: str | None = None,
        flush_bytes: int | None = None,
        storage_waits: StorageWaits | None = None,
    ) -> None:
        self.id = telemetry.id
        self.store = store
        #: Batches of a streamed part, when not the store's (see the server's choice).
        self.flush_bytes = flush_bytes
        self.storage_waits = storage_waits
        self.notifier = notifier
        self.policy = policy
        self.telemetry = telemetry
        self.pacs_name = pacs_name
        self.study_instance_uid = study_instance_uid
        self.series = SeriesAccumulator(self.id, pacs_name)
        self.outcomes: list[PartOutcome] = []
        self.bytes_stored = 0
        self.started = time.monotonic()
        self.ended = False
        self._log = logging.LoggerAdapter(log, {"association": self.id})
        self._refusals_logged = 0
        #: Refused parts beyond the first LOGGED_REFUSALS, by status (said at the end).
        self._refusals_unlogged: Counter[int] = Counter()

    # -- one part ------------------------------------------------------------------------

    async def store_part(
        self, chunks: AsyncIterator[bytes], content_type: str | None = None
    ) -> PartOutcome:
        """Read one part to its end and store it; its outcome is also in :attr:`outcomes`.

        Whatever ``chunks`` raises (the client went away, the request is too large, the
        multipart framing is broken) is raised again once the unfinished instance is
        abandoned: no file of it is left behind.
        """
        meta: FileMeta | None = None
        writer: InstanceWriter | None = None
        reader = MetaReader()
        refused: PartRefused | MetaError | None = None
        if content_type is not None and _media_type(content_type) != "application/dicom":
            refused = PartRefused(
                Status.CANNOT_UNDERSTAND,
                f"a part of type {content_type!r}: only application/dicom is stored",
            )
        try:
            async for chunk in chunks:
                self.telemetry.received(len(chunk))
                if refused is not None:
                    continue  # drain the part: the next one starts after it
                data: bytes | memoryview = chunk
                if writer is None:
                    try:
                        found = reader.feed(chunk)
                        if found is None:
                            continue
                        meta, data = found
                        writer = self._begin(meta)
                    except (MetaError, PartRefused, DatasetError) as error:
                        refused = error if not isinstance(error, DatasetError) else _refusal(error)
                        continue
                if data:
                    wait = writer.write(data)  # type: ignore[arg-type]
                    if wait is not None:
                        await self._storage(wait)
        except BaseException:
            if writer is not None:
                writer.abandon()
            raise
        if refused is None and writer is None:
            try:
                reader.finish()
            except MetaError as error:
                refused = error
        if refused is not None or writer is None:
            assert refused is not None
            return self._failed(meta, refused.status, refused.comment, None)
        return await self._finish(meta, writer)  # type: ignore[arg-type]

    async def _storage(self, wait: Awaitable[_T]) -> _T:
        """Wait for our storage; the client is not judged by its rate meanwhile."""
        waits = self.storage_waits
        if waits is None:
            return await wait
        loop = asyncio.get_running_loop()
        waits.storage_wait_began(loop.time())
        try:
            return await wait
        finally:
            waits.storage_wait_ended(loop.time())

    def _begin(self, meta: FileMeta) -> InstanceWriter:
        """The writer of a part whose meta names something we store."""
        if meta.transfer_syntax_uid not in self.policy.transfer_syntaxes:
            raise PartRefused(
                REFERENCED_TRANSFER_SYNTAX_NOT_SUPPORTED,
                f"transfer syntax {meta.transfer_syntax_uid} is not accepted",
            )
        uid = meta.sop_class_uid
        if uid == VERIFICATION_SOP_CLASS or not self.policy.accepts_abstract_syntax(uid):
            raise PartRefused(
                REFERENCED_SOP_CLASS_NOT_SUPPORTED,
                f"SOP class {meta.sop_class_uid} is not a storage SOP class",
            )
        return self.store.begin(
            pacs_name=self.pacs_name,
            sop_class_uid=meta.sop_class_uid,
            sop_instance_uid=meta.sop_instance_uid,
            transfer_syntax_uid=meta.transfer_syntax_uid,
            flush_bytes=self.flush_bytes,
        )

    async def _finish(self, meta: FileMeta, writer: InstanceWriter) -> PartOutcome:
        placed = writer.finish(self._placing)
        try:
            try:
                instance = await self._storage(asyncio.shield(placed))
            except asyncio.CancelledError:
                # Stopping: the file is being placed and its series journal promised.
                # Let it land (a rename away) so that the end of the request counts it.
                await asyncio.wait([placed])
                if not placed.cancelled() and placed.exception() is None:
                    self._stored(meta, placed.result())
                raise
        except (DatasetError, StorageError) as error:
            if isinstance(error, StorageError):
                exhaustion.report(error.os_error, "file write")
            return self._failed(meta, error.status, error.comment, writer.series_instance_uid)
        except Exception as error:  # a bug: answer honestly and say where
            self._log.error("storing %s failed", meta.sop_instance_uid, exc_info=error)
            return self._failed(
                meta, _PROCESSING_FAILURE, f"internal error: {error}", writer.series_instance_uid
            )
        return self._stored(meta, instance)

    def _placing(self, fields: HeadFields, series_dir: str) -> Callable[[], None] | None:
        """Before a file is placed: the study must be the URL's, the registration promised."""
        expected = self.study_instance_uid
        if expected is not None and fields.study_instance_uid != expected:
            raise StudyMismatchError(
                f"StudyInstanceUID {fields.study_instance_uid} is not the {expected} of the URL"
            )
        record = self.series.record(fields.series_instance_uid)
        if record.journal_key is not None:
            return None
        try:
            return self.notifier.series_starting(record, fields, series_dir)
        except Exception as error:
            if not isinstance(error, OSError):
                self._log.error("cannot record the series registration", exc_info=error)
            detail = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise StorageError(f"cannot record the series registration: {detail}") from error

    def _stored(self, meta: FileMeta, instance: StoredInstance) -> PartOutcome:
        self.bytes_stored += instance.size
        self.telemetry.instance_stored()
        for warning in instance.warnings:
            self._log.warning("%s: %s", meta.sop_instance_uid, warning)
        self.notifier.instance_stored(self.series.stored(instance))
        outcome = PartOutcome(meta.sop_class_uid, meta.sop_instance_uid)
        self.outcomes.append(outcome)
        return outcome

    def _failed(
        self, meta: FileMeta | None, status: int, comment: str, series_instance_uid: str | None
    ) -> PartOutcome:
        uid = meta.sop_instance_uid if meta is not None else None
        if self._refusals_logged < LOGGED_REFUSALS:
            self._refusals_logged += 1
            self._log.warning(
                "STOW-RS part %d (%s) refused: %04X %s",
                len(self.outcomes) + 1,
                uid,
                status,
                comment,
            )
        else:
            self._refusals_unlogged[status] += 1
        self.series.failed(series_instance_uid, comment)
        self.telemetry.instance_failed(status)
        self.notifier.instance_failed(self.id, self.pacs_name, series_instance_uid, comment)
        outcome = PartOutcome(
            meta.sop_class_uid if meta is not None else None, uid, status, comment
        )
        self.outcomes.append(outcome)
        return outcome

    # -- the end -------------------------------------------------------------------------

    def end(self, reason: str) -> None:
        """Once per request: report its series (as an association's end does)."""
        if self.ended:
            return
        self.ended = True
        series = self.series
        if self._refusals_unlogged:
            self._log.warning(
                "STOW-RS request: %d more part(s) refused (%s)",
                sum(self._refusals_unlogged.values()),
                ", ".join(f"{n} x {s:04X}" for s, n in self._refusals_unlogged.most_common()),
            )
        self._log.info(
            "STOW-RS request ended (%s): %d stored, %d failed, %d bytes in %.3f s",
            reason,
            series.stored_count,
            series.failed_count,
            self.bytes_stored,
            time.monotonic() - self.started,
        )
        scope = CURRENT_ASSOCIATION.set(self.telemetry)
        try:
            self.notifier.association_ended(self.id, series.finish())
        finally:
            CURRENT_ASSOCIATION.reset(scope)


def _refusal(error: DatasetError) -> PartRefused:
    return PartRefused(error.status, error.comment)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()
