"""Streaming a received data set into a Part-10 file at its CUBE path.

Data set fragments are held as views (no copy) until ``flush_bytes`` have
gathered, then written to a temporary file in the hidden folder
``{FILES_ROOT}/.oxidicom-tmp`` (same filesystem), which is renamed into place
once the data set is complete. At most two batches exist per instance (one being
written, one gathering) and :meth:`InstanceWriter.write` hands back the pending
write for the caller to wait on before feeding more: memory per association stays
flat whatever the size of the instance.

An instance small enough never to reach ``flush_bytes`` is written in one go:
open, write, rename. Without fsync those are page-cache operations of a few
microseconds, done on the event loop so the response leaves in the same batch; with
fsync they take one trip to the executor, where a slow disk cannot stall the other
associations. Without fsync, such an instance of more than ``EARLY_WRITE_BYTES`` is
written on the loop as it arrives, once its head is known, so that the answer waits
only for the write of the last fragment. Larger instances stream through aiofiles, except
where FILES_ROOT is in memory (tmpfs, ramfs): with no disk to wait for, every instance
is written on the loop as it arrives, whatever its size. The head of the data set is
parsed as it streams by; an instance whose required attributes are missing is refused
without writing a byte.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import aiofiles.os
import msgspec

from oxidicom.dicom.errors import DatasetError, DatasetMismatchError
from oxidicom.dicom.head import HeadFields, HeadParser
from oxidicom.dicom.part10 import file_meta
from oxidicom.dimse.commands import Status
from oxidicom.storage.layout import check_required, instance_file_name, series_dir
from oxidicom.storage.tmpdir import WorkDir, remove_stale
from oxidicom.support.atomic import TEMP_FILE_FLAGS, write_then_rename
from oxidicom.support.atomic import write_all as _write_all
from oxidicom.support.background import Background
from oxidicom.support.extensions import load_compiled

log = logging.getLogger("oxidicom.storage")

#: The hidden folder of temporary files inside FILES_ROOT (CONTRACT section 2).
TMP_DIR_NAME = ".oxidicom-tmp"
#: Bytes gathered before a write; also the largest instance written in one go. Larger
#: batches keep a streaming sender going while the previous one is written: 1 MiB gave
#: a 256 MiB instance 0.85 x dcmtk's throughput, 2 MiB 0.94 x, 4 MiB 0.99 x (peak RSS 49,
#: 51, 55 MiB; benches/results/flush-sweep.md). At most two batches exist per association.
DEFAULT_FLUSH_BYTES = 4 * 1024 * 1024
#: Without fsync, an instance below ``flush_bytes`` is written on the loop as it arrives,
#: once this much has gathered (and its head is known): its answer then waits only for the
#: write of its last fragment, not of the whole data set. Smaller instances (nearly every
#: MR or CT slice of a few KiB) arrive in one read or two, and are written in one go.
#: Where FILES_ROOT is in memory, larger instances too: no batch is held, and no thread
#: competes with the loop for the CPUs (a 256 MiB instance on tmpfs, same rounds: 1.03
#: against 0.91 x dcmtk's throughput, 140 against 160 ms of CPU, 8 against 65 ms waiting
#: for a CPU, peak RSS 49 against 60 MiB; benches/results/flood-i21-s9-big.md).
EARLY_WRITE_BYTES = 64 * 1024
#: Series folders remembered as existing (a ``makedirs`` saved per instance). Bounded: an
#: archive migration writes a folder per instance, millions over a process's life; past
#: this many the memory starts over, and a forgotten folder costs one ``makedirs`` again.
KNOWN_DIRS_MAX = 4096
#: Permissions of a stored file (CUBE's workers read it).
_FILE_MODE = 0o644


class StorageError(Exception):
    """The file could not be written: C-STORE status A700 (out of resources)."""

    status = Status.OUT_OF_RESOURCES

    def __init__(self, comment: str, os_error: OSError | None = None) -> None:
        super().__init__(comment)
        self.comment = comment
        #: The system's error behind it, if any (EMFILE is counted: see telemetry).
        self.os_error = os_error


class StoredInstance(msgspec.Struct, frozen=True, gc=False):
    """A file at its final path."""

    fields: HeadFields
    #: The series folder relative to FILES_ROOT, no trailing slash.
    series_dir: str
    file_name: str
    size: int
    warnings: tuple[str, ...] = ()


class Store:
    """FILES_ROOT: where instances are written, and the directories known to exist."""

    def __init__(
        self, files_root: str | Path, *, fsync: bool = False, flush_bytes: int = DEFAULT_FLUSH_BYTES
    ) -> None:
        self.root = Path(files_root)
        self.tmp_dir = self.root / TMP_DIR_NAME
        self.flush_bytes = flush_bytes
        self._known_dirs: set[str] = set()
        self._cleanups = Background()
        self._names = itertools.count()
        #: This process's own locked folder: replicas sharing FILES_ROOT never collide.
        self.work_dir = WorkDir(self.tmp_dir)
        self._prefix = ""  # the work folder's, once claimed (claim may pick another)
        self._root_prefix = f"{self.root}/"
        #: On tmpfs or ramfs: no disk to wait for, so nothing goes through the executor
        #: without fsync, whatever the instance's size (EARLY_WRITE_BYTES).
        self.memory_backed = memory_backed(self.root)
        #: fsync each file, unless the filesystem makes it a no-op (memory-backed).
        self.sync_files = fsync and not self.memory_backed
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running event loop, remembered: ``asyncio.get_running_loop`` costs a
        ``getpid`` system call each time (CPython 3.11 checks for a fork)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def prepare(self) -> None:
        """Create FILES_ROOT and our temporary folder (at start, before any association)."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.claim()
        self._prefix = f"{self.work_dir.path}/"
        self._known_dirs.add(str(self.root))

    def remove_stale_temporary_files(self) -> int:
        """Delete temporary files that dead receivers left behind; return how many."""
        return remove_stale(self.tmp_dir, self.work_dir.path)

    def close(self) -> None:
        """At a clean stop, after :meth:`drain`: remove our temporary folder."""
        self.work_dir.release()

    def track(self, cleanup: asyncio.Future[None]) -> None:
        """Keep a background cleanup alive until it is done (see :meth:`drain`)."""
        self._cleanups.add(cleanup)

    async def drain(self) -> None:
        """Wait for background cleanups of abandoned instances (at shutdown)."""
        await self._cleanups.drain()

    def begin(
        self,
        *,
        pacs_name: str,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax_uid: str,
        flush_bytes: int | None = None,
    ) -> InstanceWriter:
        """Start receiving one instance (``flush_bytes``: its batches, if not the store's)."""
        meta = file_meta(sop_class_uid, sop_instance_uid, transfer_syntax_uid, pacs_name)
        temp = f"{self._prefix}{next(self._names)}.part"
        command = (sop_class_uid, sop_instance_uid)
        return InstanceWriter(
            self, pacs_name, meta, transfer_syntax_uid, temp, command, flush_bytes
        )

    # On the loop, or in the executor with fsync: every blocking call of a small instance.
    def write_whole(
        self, temp: str, directory: str, final: str, parts: list[bytes | memoryview]
    ) -> int:
        # In the same trip: once the failure is answered, nothing of it is left.
        return write_then_rename(
            temp, parts, self.sync_files, _FILE_MODE, _unlink, self.place, directory, final
        )

    def place(self, temp: str, directory: str, final: str) -> None:
        """Rename the finished temporary file to its final path (blocking)."""
        known = self._known_dirs
        if directory not in known:
            os.makedirs(directory, exist_ok=True)
            if len(known) >= KNOWN_DIRS_MAX:
                known.clear()
            known.add(directory)
        try:
            os.replace(temp, final)
        except FileNotFoundError:
            # Someone removed the series folder since we cached it: make it again.
            os.makedirs(directory, exist_ok=True)
            os.replace(temp, final)


def check_identity(fields: HeadFields, sop_class_uid: str, sop_instance_uid: str) -> list[str]:
    """The data set must be the instance the C-STORE-RQ names (PS3.4 B.2.3); return warnings.

    Raises :class:`DatasetMismatchError` (0xA900, as dcmtk's storescp answers) when the
    data set's SOPInstanceUID (0008,0018) or SOPClassUID (0008,0016) differs from the
    command's AffectedSOPInstanceUID or AffectedSOPClassUID: the file's meta header, made
    from the command, would contradict its own data set. Both sides are compared without
    their padding (trailing NUL or space). A data set without SOPClassUID (or with an
    empty one) is stored, with a warning, under the command's class: dcmtk and Orthanc
    refuse it (0xC000), but the reference receiver stores it and nothing in the file then
    contradicts anything. The SOPInstanceUID is required (``check_required``).
    """
    if fields.sop_class_uid and fields.sop_class_uid != sop_class_uid:
        raise DatasetMismatchError("SOPClassUID", fields.sop_class_uid, sop_class_uid)
    if fields.sop_instance_uid != sop_instance_uid:
        raise DatasetMismatchError("SOPInstanceUID", fields.sop_instance_uid, sop_instance_uid)
    if not fields.sop_class_uid:
        state = "missing from" if fields.sop_class_uid is None else "empty in"
        return [f"SOPClassUID (0008,0016) {state} the data set; stored as {sop_class_uid}"]
    return []


_write_all_async = aiofiles.os.wrap(_write_all)  # type: ignore[no-untyped-call]
_open_async = aiofiles.os.wrap(os.open)  # type: ignore[no-untyped-call]
_close_async = aiofiles.os.wrap(os.close)  # type: ignore[no-untyped-call]
_fsync_async = aiofiles.os.wrap(os.fsync)  # type: ignore[no-untyped-call]


def _unlink(path: str) -> None:
    """Remove a temporary file; never raises (it often runs unobserved in the executor).

    What cannot be removed now (a disk gone read-only) is removed at the next start.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning("cannot remove temporary file %s: %s", path, error.strerror or error)


class InstanceWriterPy:
    """One instance, from its first data set fragment to a file at its final path."""

    # No __slots__: the compiled writer keeps this state in the C fields of its first base
    # (``_writer_c._WriterState``), which slots here would conflict with.

    def __init__(
        self,
        store: Store,
        pacs_name: str,
        meta: bytes,
        transfer_syntax_uid: str,
        temp: str,
        command_uids: tuple[str, str],
        flush_bytes: int | None = None,
    ) -> None:
        self._store = store
        self._flush_bytes = store.flush_bytes if flush_bytes is None else flush_bytes
        self._pacs_name = pacs_name
        #: (AffectedSOPClassUID, AffectedSOPInstanceUID) of the C-STORE-RQ: the file meta's.
        self._command_uids = command_uids
        self._temp = temp
        self._head = HeadParser(transfer_syntax_uid)
        self._head_done = False
        self._fields: HeadFields | None = None
        self._warnings: tuple[str, ...] = ()
        #: Series dir (relative), directory, final path, file name.
        self._target: tuple[str, str, str, str] | None = None
        self._error: DatasetError | StorageError | None = None
        self._parts: list[bytes | memoryview] = [meta]
        self._gathered = len(meta)
        self._size = 0
        self._fd: int | None = None
        self._flushing: asyncio.Future[None] | None = None
        #: Blocking work before the file is placed (the series' journal entry made durable).
        self._durable: Callable[[], None] | None = None

    @property
    def series_instance_uid(self) -> str | None:
        """The series of this instance, once the head has been read (for error reports)."""
        if self._fields is not None:
            return self._fields.series_instance_uid
        return self._head.series_instance_uid

    @property
    def refused(self) -> bool:
        """True once the instance is known to be unstorable: the rest is drained."""
        return self._error is not None

    def write(self, data: memoryview) -> asyncio.Future[None] | None:
        """Take one fragment; a returned future must complete before the next call."""
        if self._error is not None:
            return None
        if not self._head_done:
            try:
                if self._head.feed(data):
                    self._head_done = True
                    self._resolve_target()
            except DatasetError as error:
                self._refuse(error)
                return None
        self._parts.append(data)
        self._gathered += len(data)
        if self._gathered < self._flush_bytes:
            if (
                self._gathered >= EARLY_WRITE_BYTES
                and self._head_done
                and self._flushing is None
                and not self._store.sync_files
                and (self._store.memory_backed or self._size + self._gathered <= self._flush_bytes)
            ):
                self._write_early()
            return None
        if self._flushing is not None and not self._flushing.done():
            return self._flushing
        self._start_flush()
        return None

    def finish(
        self, before_placing: Callable[[HeadFields, str], Callable[[], None] | None] | None = None
    ) -> asyncio.Future[StoredInstance]:
        """The data set is complete: place the file.

        ``before_placing(fields, series_dir)`` is called on the loop once the head is known
        and before the file is placed; a :class:`StorageError` it raises refuses the
        instance. What it returns, if anything, is blocking work (making the series'
        journal entry durable) run in the executor before the file is placed: the
        future is not done before it is, and its OSError refuses the instance. The
        future fails with :class:`DatasetError` or :class:`StorageError` when the
        instance cannot be stored, and only once nothing of it is left: its temporary
        file closed and removed, so that the answer never races the cleanup.
        """
        loop = self._store._loop  # Store.loop without its call, when it is current
        if loop is None or not loop.is_running():
            loop = self._store.loop
        if self._error is None and not self._head_done:
            self._head_done = True
            try:
                self._resolve_target()
            except DatasetError as error:
                self._refuse(error)
        if self._error is None and before_placing is not None:
            try:
                self._durable = before_placing(self._fields, self._target[0])  # type: ignore[arg-type,index]
            except StorageError as error:
                self._refuse(error)
        if self._error is not None:
            if self._fd is not None or self._flushing is not None:
                return asyncio.ensure_future(self._fail_streamed(self._error))
            failed: asyncio.Future[StoredInstance] = loop.create_future()
            failed.set_exception(self._error)
            self._parts = []
            return failed
        if self._flushing is None:
            if self._fd is None:
                return self._finish_whole(loop)
            if self._durable is None:
                return self._finish_early(loop)
        return asyncio.ensure_future(self._finish_streamed())

    def abandon(self) -> None:
        """Forget the instance (association ended, or refused): no file is left behind."""
        self._parts = []
        if self._error is None:
            self._error = DatasetError(
                Status.CANNOT_UNDERSTAND, "the association ended inside the data set"
            )
        if self._fd is not None or self._flushing is not None:
            self._store.track(asyncio.ensure_future(self._cleanup()))

    # -- internals -----------------------------------------------------------------------

    def _resolve_target(self) -> None:
        fields = self._head.finish()
        self._fields = fields
        warnings = check_required(fields)
        sop_class_uid, sop_instance_uid = self._command_uids
        if fields.sop_instance_uid != sop_instance_uid or fields.sop_class_uid != sop_class_uid:
            # A mismatch, or no SOPClassUID in the data set (the command has one).
            warnings += check_identity(fields, sop_class_uid, sop_instance_uid)
        self._warnings = tuple(warnings) if warnings else ()
        relative = series_dir(self._pacs_name, fields)
        directory = self._store._root_prefix + relative
        name = instance_file_name(fields)
        self._target = (relative, directory, f"{directory}/{name}", name)

    def _refuse(self, error: DatasetError | StorageError) -> None:
        self._error = error
        self._parts = []
        self._gathered = 0

    def _result(self) -> StoredInstance:
        fields, target = self._fields, self._target
        if fields is None or target is None:
            raise RuntimeError("instance finished before its head was parsed")
        return StoredInstance(fields, target[0], target[3], self._size, self._warnings)

    def _finish_whole(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[StoredInstance]:
        # The hot path for ordinary instances: no Task, and no executor trip without fsync.
        target = self._target
        _, directory, final, _ = target  # type: ignore[misc]
        parts, self._parts = self._parts, []
        done: asyncio.Future[StoredInstance] = loop.create_future()
        store = self._store
        durable, self._durable = self._durable, None
        if not store.sync_files and durable is None:
            try:  # Store.write_whole, without fsync, inlined
                size = self._size = write_then_rename(
                    self._temp, parts, False, _FILE_MODE, _unlink, store.place, directory, final
                )
            except OSError as error:
                done.set_exception(_storage_error(error))
            except Exception as error:  # a bug: answered as the executor path answers it
                done.set_exception(error)
            else:  # _result, inlined
                done.set_result(
                    StoredInstance(self._fields, target[0], target[3], size, self._warnings)  # type: ignore[arg-type,index]
                )
            return done

        def placed(written: asyncio.Future[int]) -> None:
            error = written.exception()
            if error is None:
                self._size = written.result()
                done.set_result(self._result())
                return
            done.set_exception(error if isinstance(error, StorageError) else _storage_error(error))

        if durable is None:
            job = loop.run_in_executor(None, store.write_whole, self._temp, directory, final, parts)
        else:
            job = loop.run_in_executor(
                None, _after, durable, store.write_whole, self._temp, directory, final, parts
            )
        job.add_done_callback(placed)
        return done

    def _write_early(self) -> None:
        """What has gathered, to the temporary file now, on the loop (no fsync: page-cache
        writes, as the whole-instance path makes at the end)."""
        parts, self._parts = self._parts, []
        self._gathered = 0
        try:
            if self._fd is None:
                self._fd = os.open(self._temp, TEMP_FILE_FLAGS, _FILE_MODE)
            self._size += _write_all(self._fd, parts)
        except OSError as error:
            # Drain the rest of the data set; finish() reports the failure and cleans up.
            self._refuse(_storage_error(error))

    def _finish_early(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[StoredInstance]:
        """The rest, close, rename: on the loop, as :meth:`_finish_whole` (no fsync)."""
        target = self._target
        _, directory, final, _ = target  # type: ignore[misc]
        parts, self._parts = self._parts, []
        fd, self._fd = self._fd, None
        done: asyncio.Future[StoredInstance] = loop.create_future()
        try:
            try:
                try:
                    if parts:
                        self._size += _write_all(fd, parts)  # type: ignore[arg-type]
                finally:
                    os.close(fd)  # type: ignore[arg-type]
                self._store.place(self._temp, directory, final)
            except BaseException:
                _unlink(self._temp)  # as write_then_rename: nothing is left
                raise
        except OSError as error:
            done.set_exception(_storage_error(error))
        except Exception as error:  # a bug: answered as _finish_whole answers it
            done.set_exception(error)
        else:
            done.set_result(self._result())
        return done

    def _start_flush(self) -> None:
        parts, self._parts = self._parts, []
        self._gathered = 0
        self._flushing = asyncio.ensure_future(self._flush(parts))

    async def _flush(self, parts: list[bytes | memoryview]) -> None:
        try:
            if self._fd is None:
                self._fd = await _open_async(self._temp, TEMP_FILE_FLAGS, _FILE_MODE)
            self._size += await _write_all_async(self._fd, parts)
        except OSError as error:
            # Drain the rest of the data set; finish() reports the failure.
            self._refuse(_storage_error(error))

    async def _finish_streamed(self) -> StoredInstance:
        _, directory, final, _ = self._target  # type: ignore[misc]
        loop = asyncio.get_running_loop()
        if self._flushing is not None:
            await self._flushing
        if self._error is None:
            await self._flush(self._parts)
            self._parts = []
        fd, self._fd = self._fd, None
        placed = False
        try:
            try:
                if self._error is None and self._store.sync_files and fd is not None:
                    await _fsync_async(fd)
            finally:
                if fd is not None:
                    await _close_async(fd)
            if self._error is not None:
                raise self._error
            durable, self._durable = self._durable, None
            if durable is not None:
                await loop.run_in_executor(None, _after, durable, _nothing)
            await loop.run_in_executor(None, self._store.place, self._temp, directory, final)
            placed = True
        except OSError as error:
            raise _storage_error(error) from error
        finally:
            if not placed:
                await loop.run_in_executor(None, _unlink, self._temp)
        return self._result()

    async def _fail_streamed(self, error: DatasetError | StorageError) -> StoredInstance:
        """A refused instance that had reached the disk: fail once it is gone from there."""
        self._parts = []
        await self._cleanup()
        raise error

    async def _cleanup(self) -> None:
        """Close and remove the temporary file, once the write in flight is over."""
        if self._flushing is not None:
            await self._flushing  # never raises: _flush keeps its errors
        fd, self._fd = self._fd, None
        try:
            if fd is not None:
                await _close_async(fd)
        except OSError as error:  # the descriptor is released all the same (close(2))
            log.warning("cannot close temporary file %s: %s", self._temp, error)
        finally:
            await asyncio.get_running_loop().run_in_executor(None, _unlink, self._temp)


_R = TypeVar("_R")
_MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})


def memory_backed(path: Path) -> bool:
    """True when ``path`` is on tmpfs or ramfs, where fsync does nothing (Linux)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mounts:
            lines = mounts.readlines()
    except OSError:
        return False
    target = os.path.realpath(path)
    best, best_type = "", ""
    for line in lines:
        # proc(5): "id parent major:minor root mount-point options ... - fstype source options"
        fields = line.split()
        try:
            mount_point = fields[4].replace("\\040", " ")
            fs_type = fields[fields.index("-") + 1]
        except (IndexError, ValueError):
            continue
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    return best_type in _MEMORY_FILESYSTEMS


def _after(durable: Callable[[], None], job: Callable[..., _R], *args: object) -> _R:
    """``durable()``, then ``job(*args)`` (in the executor); durable's OSError refuses."""
    try:
        durable()
    except OSError as error:
        raise StorageError(
            f"cannot make the series registration durable: {error.strerror or error}", error
        ) from error
    return job(*args)


def _nothing() -> None:
    pass


def _storage_error(error: BaseException) -> StorageError:
    if isinstance(error, OSError):
        return StorageError(f"cannot store the file: {error.strerror or error}", error)
    return StorageError(f"cannot store the file: {error}")


# The compiled twin (oxidicom/storage/_writer_c.pyx) of what runs for every instance:
# ``Store.begin`` (with the file meta of an ASCII UID), the writer's state in C fields
# (``_WriterState``, the first base of ``InstanceWriterC``), ``__init__``, ``write``,
# ``finish``, ``_resolve_target`` and ``_finish_whole``'s common case (placed on the loop).
# Early and streamed writes, refusals and clean-up stay the reference's.
#: The reference of Store.begin, whichever is in use (the writer's tests run both).
begin_py = Store.begin
InstanceWriter: type[InstanceWriterPy] = InstanceWriterPy
_c = load_compiled("oxidicom.storage._writer_c")
if _c is not None:
    _c.bind(sys.modules[__name__], InstanceWriterPy)

    class InstanceWriterC(_c._WriterState, InstanceWriterPy):  # type: ignore[misc,name-defined]
        """:class:`InstanceWriterPy` with its state in C fields and its per-instance path
        compiled."""

    InstanceWriter = InstanceWriterC
    Store.begin = _c.begin  # type: ignore[method-assign]
