"""The series journal: registrations of running associations, for a receiver that is killed.

A series is registered when its association ends. A receiver killed with SIGKILL (or by
the OOM killer) never sees that end, and without a record the files it had acknowledged
would stay in CUBE's storage, unregistered. So when an association stores the first
file of a series, the registration it will send is written here first, before the
success status leaves: one line of JSON (queue, association, trace context and the
task's keyword arguments) in ``{OUTBOX_DIR}/.journal/{random}/``. It is removed once
the real registration is in the outbox; meanwhile it is also where the registration's
fields are kept (read back when the association ends), not the receiver's memory. At
start, the entries of dead processes become outbox registrations, with ``ndicom``
counted from the ``.dcm`` files in the series folder (which may include files that
other associations stored there: CUBE registers the folder either way).

Each process journals in a folder of its own, locked while it lives, exactly like the
temporary folders of :mod:`oxidicom.storage.tmpdir`: a starting process recovers only
the folders of processes that are gone.

A series that spans associations (``OXIDICOM_SERIES_SETTLE`` above 0, see
:mod:`oxidicom.notify.settle`) has one entry per process and incarnation, named
``s-{digest}-{n}`` after the digest of its series folder: the entry is the process's
*hold* on the series. Whether to register a settled series or leave it to another holder
is decided under one outbox-wide ``flock`` (:meth:`SeriesJournal.settling`), which the
recovery of dead processes' entries takes too: of all the holders of a series, the last
to decide registers it, counting the files in its folder, and the entries of dead
holders go with that registration. That includes a process that stopped cleanly
while its outbox could not be written: its entries stay, its folder is unlocked at the
stop, and the next start registers them. Everything here blocks; entries are a few
hundred bytes.

Durability: an entry is written (and renamed into place) on the loop without fsync; that
survives the death of the process (the page cache). With ``OXIDICOM_FSYNC=true`` it must
survive a power cut too, before the success of the file that promised it is answered:
:meth:`SeriesJournal.record` then returns the blocking work that makes it durable (fsync
of the entry, then of its folder, whose new name the rename wrote), which the storage
writer runs in the executor before it places that file. The folders themselves are made
durable once, at start. On tmpfs and ramfs there is nothing to make durable.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from oxidicom.notify.celery import TASK_NAME
from oxidicom.notify.outbox import INVALID_SUFFIX, Outbox, Registration
from oxidicom.storage.tmpdir import WorkDir
from oxidicom.storage.writer import memory_backed
from oxidicom.support.atomic import write_then_rename
from oxidicom.support.owned import Owner, judge_owner

log = logging.getLogger("oxidicom.registrations")

JOURNAL_DIR_NAME = ".journal"
#: The outbox-wide lock of settle decisions, beside the process folders.
SETTLE_LOCK_NAME = ".settle.lock"
_SUFFIX = ".json"
#: Entries of series that span associations: ``s-{digest}-{n}.json``.
_SERIES_PREFIX = "s-"
_DIGEST_LENGTH = 32
#: Entries of a dead process recovered under one taking of the settle lock.
_RECOVERY_CHUNK = 256


def series_digest(series_dir: str) -> str:
    """The name of a series folder (relative to FILES_ROOT) in the journal."""
    return hashlib.blake2b(series_dir.encode(), digest_size=_DIGEST_LENGTH // 2).hexdigest()


def series_entry_name(digest: str, incarnation: int) -> str:
    """The journal key of one process's hold on a series that spans associations."""
    return f"{_SERIES_PREFIX}{digest}-{incarnation}"


def digest_of_key(key: str) -> str | None:
    """The series digest of a hold's journal key; None for a per-association entry."""
    if key.startswith(_SERIES_PREFIX) and len(key) > len(_SERIES_PREFIX) + _DIGEST_LENGTH:
        return key[len(_SERIES_PREFIX) : len(_SERIES_PREFIX) + _DIGEST_LENGTH]
    return None


def count_series_files(series_dir: Path) -> int:
    """The ``.dcm`` files in a series folder: what CUBE compares ``ndicom`` with."""
    try:
        with os.scandir(series_dir) as entries:
            return sum(
                1 for e in entries if e.name.endswith(".dcm") and e.is_file(follow_symlinks=False)
            )
    except FileNotFoundError:
        return 0


@dataclass(frozen=True, slots=True)
class Hold:
    """A journal entry of a series that spans associations, in some process's folder."""

    path: Path
    #: Its process lives (or cannot be judged: when in doubt, it is taken as alive).
    live: bool


class SeriesHolds:
    """A snapshot of every process's holds, by series digest (taken under the lock)."""

    def __init__(self, holds: dict[str, list[Hold]]) -> None:
        self._holds = holds

    def others(self, digest: str, own: Path) -> list[Hold]:
        """The holds on a series other than the entry ``own``."""
        return [h for h in self._holds.get(digest, ()) if h.path != own]


class JournalEntry(msgspec.Struct, frozen=True):
    """What the registration of a series will need: one line of JSON on disk."""

    queue: str
    kwargs: dict[str, Any]
    association_id: str | None = None
    traceparent: str | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(JournalEntry).decode


def encode_entry(entry: JournalEntry) -> bytes:
    """An entry as stored (in the journal, and in a series store)."""
    return _encode(entry)


def decode_entry(data: bytes) -> JournalEntry:
    """An entry from its JSON (ValueError when it is not one)."""
    try:
        return _decode(data)
    except msgspec.DecodeError as error:
        raise ValueError(str(error)) from None


class SeriesJournal:
    """This process's journal folder, and the recovery of dead processes' folders."""

    def __init__(
        self, outbox_dir: Path, files_root: Path, *, fsync: bool = False, family: str = ""
    ) -> None:
        """``family``: what the folders of this process's sibling workers (one supervisor's)
        are named with first; they are not other receivers."""
        self.root = outbox_dir / JOURNAL_DIR_NAME
        self.files_root = files_root
        self.work_dir = WorkDir(self.root, family)
        #: Entries are made durable (see the module): OXIDICOM_FSYNC, unless in memory.
        self.fsync = fsync
        self._prefix = ""
        self._unlocked_warned = False
        #: With a series store (replicas on several hosts): the holds of dead processes
        #: are not registered at recovery but moved into our folder, under these keys,
        #: for the store to decide (another replica may have registered them already).
        self.adopt_series = False
        self.adopted: list[str] = []
        self._adoptions = 0

    def prepare(self) -> None:
        """Create and lock our folder (at start); with fsync, make the folders durable."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.work_dir.claim()
        self._prefix = f"{self.work_dir.path}/"
        if self.fsync and memory_backed(self.root):
            self.fsync = False
        if self.fsync:
            for folder in (self.root.parent, self.root, self.work_dir.path):
                _sync_folder(str(folder))

    def record(self, key: str, entry: JournalEntry) -> Callable[[], None] | None:
        """Write (or replace) entry ``key``; it is whole or absent, never partial.

        Returns, with fsync, what makes it durable (blocking: run it in the executor,
        and before answering success for the file that promised it); else None.
        """
        final = f"{self._prefix}{key}{_SUFFIX}"
        temp = f"{self._prefix}.{key}.tmp"
        write_then_rename(temp, [_encode(entry)], False, 0o600, _discard, os.replace, final)
        return self.durable(key)

    def durable(self, key: str) -> Callable[[], None] | None:
        """What makes entry ``key`` durable (fsync of it and of its folder); None without fsync."""
        if not self.fsync:
            return None
        return functools.partial(_sync_entry, f"{self._prefix}{key}{_SUFFIX}", self._prefix)

    def record_raw(self, key: str, data: bytes) -> None:
        """Write entry ``key`` from its JSON (an entry a series store kept)."""
        final = f"{self._prefix}{key}{_SUFFIX}"
        temp = f"{self._prefix}.{key}.tmp"
        write_then_rename(temp, [data], False, 0o600, _discard, os.replace, final)

    def read(self, key: str) -> JournalEntry:
        """Entry ``key`` (OSError, or ValueError when it is not an entry)."""
        with open(f"{self._prefix}{key}{_SUFFIX}", "rb") as file:
            data = file.read()
        try:
            return _decode(data)
        except msgspec.DecodeError as error:
            raise ValueError(str(error)) from None

    def forget(self, key: str) -> None:
        """Remove entry ``key`` (its registration is in the outbox)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{self._prefix}{key}{_SUFFIX}")

    def path_of(self, key: str) -> Path:
        """The file of our entry ``key``."""
        return Path(f"{self._prefix}{key}{_SUFFIX}")

    @contextlib.contextmanager
    def settling(self) -> Iterator[None]:
        """Hold the outbox-wide lock under which holds are judged, registered or dropped.

        Blocks (in the executor) while another process decides; a decision is a few file
        operations per series. The kernel lets go of the lock if its holder dies.
        """
        fd = os.open(self.root / SETTLE_LOCK_NAME, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as error:
                # No locks on this filesystem: a process alone decides right all the same;
                # processes sharing the outbox may then both register a series (which
                # CUBE refuses the second time), never neither.
                if not self._unlocked_warned:
                    self._unlocked_warned = True
                    log.warning(
                        "cannot lock %s (%s): processes sharing this outbox may register a"
                        " series split between them twice",
                        self.root / SETTLE_LOCK_NAME,
                        error,
                    )
            yield
        finally:
            os.close(fd)

    def holds(self, *, dead_too: Path | None = None, own: bool = True) -> SeriesHolds:
        """Every process's holds (call under :meth:`settling`).

        Each folder's owner is judged once: ours and ``dead_too`` (a folder being
        recovered, whose lock the caller holds) count as they are, alive and dead.
        ``own=False`` leaves our folder out (the caller knows our holds from memory: a
        listing of it per batch would cost time in the number of series we hold).
        """
        own_path = str(self.work_dir.path)
        holds: dict[str, list[Hold]] = {}
        with contextlib.suppress(FileNotFoundError), os.scandir(self.root) as folders:
            for folder in folders:
                if not folder.is_dir(follow_symlinks=False):
                    continue
                if not own and folder.path == own_path:
                    continue
                names = [n for n in _listdir(folder.path) if n.startswith(_SERIES_PREFIX)]
                if not names:
                    continue
                if folder.path == own_path:
                    live = True
                elif dead_too is not None and folder.path == str(dead_too):
                    live = False
                else:
                    live = _owner_alive(Path(folder.path))
                for name in names:
                    if not name.endswith(_SUFFIX):
                        continue
                    digest = digest_of_key(name[: -len(_SUFFIX)])
                    if digest is not None:
                        holds.setdefault(digest, []).append(Hold(Path(folder.path, name), live))
        return SeriesHolds(holds)

    def release(self) -> None:
        """At a clean stop: remove our folder if no entry is left in it, and unlock it.

        Entries left (registrations the outbox could not take) stay for the next start.
        """
        self.work_dir.release()

    def running_others(self) -> int:
        """How many other live receiver processes journal beside us (share our outbox);
        our sibling workers are not counted: they are this receiver."""
        running = 0
        family = self.work_dir.family
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root):
                if family and entry.name.startswith(family):
                    continue
                if entry.is_dir(follow_symlinks=False) and entry.path != str(self.work_dir.path):
                    with contextlib.suppress(OSError), judge_owner(Path(entry.path)) as owner:
                        # Only a lock held now: a folder without one may be a stillbirth's.
                        running += owner is Owner.ALIVE
        return running

    def recover(self, outbox: Outbox) -> int:
        """Turn the entries of gone processes into outbox registrations; return how many."""
        recovered = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root):
                if entry.is_dir(follow_symlinks=False) and entry.path != str(self.work_dir.path):
                    recovered += self._recover_folder(Path(entry.path), outbox)
        return recovered

    def _recover_folder(self, folder: Path, outbox: Outbox) -> int:
        # Only a folder whose owner is gone, and while we hold its lock: not one being
        # created (no lock file yet), alive, or recovered by another starting process.
        with judge_owner(folder) as owner:
            if owner is not Owner.GONE:
                return 0
            recovered = 0
            registered: set[str] = set()
            paths = sorted(folder.glob(f"*{_SUFFIX}"))
            if self.adopt_series:
                paths = [p for p in paths if not self._adopted(p)]
            for start in range(0, len(paths), _RECOVERY_CHUNK):
                try:
                    with self.settling():
                        holds = self.holds(dead_too=folder)
                        for path in paths[start : start + _RECOVERY_CHUNK]:
                            recovered += self._recover_entry(
                                path, outbox, folder, registered, holds
                            )
                except OSError as error:
                    # The outbox cannot be written either: keep the folder (unlocked,
                    # so the next start tries again) and this run's own journal works.
                    log.error(
                        "cannot register journal entries of %s in the outbox %s: %s; kept for"
                        " the next start",
                        folder,
                        outbox.directory,
                        error,
                    )
                    return recovered
            shutil.rmtree(folder, ignore_errors=True)
            return recovered

    def _adopted(self, path: Path) -> bool:
        """A dead process's hold on a series, moved into our folder (True), or not one."""
        digest = digest_of_key(path.name[: -len(_SUFFIX)])
        if digest is None:
            return False
        self._adoptions += 1
        key = series_entry_name(digest, 0) + f"a{self._adoptions}"
        try:
            os.replace(path, f"{self._prefix}{key}{_SUFFIX}")
        except OSError as error:
            log.error("cannot adopt journal entry %s: %s", path, error)
            return True
        self.adopted.append(key)
        return True

    def _recover_entry(
        self, path: Path, outbox: Outbox, folder: Path, registered: set[str], holds: SeriesHolds
    ) -> int:
        """One entry of a dead process, under :meth:`settling`.

        A series that a live process holds is left to it (it counts the folder when it
        registers); one registered already from this folder is not registered again; the
        entries of other dead processes on the same series go with this registration.
        """
        try:
            journaled = _decode(path.read_bytes())
            relative = journaled.kwargs["path"]
            series_dir = self.files_root / relative
        except (OSError, msgspec.DecodeError, KeyError, TypeError) as error:
            aside = outbox.directory / f"journal-{path.stem}{INVALID_SUFFIX}"
            log.warning("journal entry %s is unreadable (%s): kept as %s", path, error, aside)
            with contextlib.suppress(OSError):
                path.rename(aside)
            return 0
        digest = series_digest(str(relative))
        others = holds.others(digest, path)
        if digest in registered or any(h.live for h in others):
            log.info(
                "series %s of association %s, left in the journal by an earlier run: %s",
                journaled.kwargs.get("SeriesInstanceUID"),
                journaled.association_id,
                "registered with another entry"
                if digest in registered
                else "another receiver process holds it and registers it",
            )
            path.unlink()
            return 0
        files = count_series_files(series_dir)
        if files:
            registration = Registration.new(
                TASK_NAME,
                journaled.queue,
                journaled.kwargs | {"ndicom": files},
                association_id=journaled.association_id,
                traceparent=journaled.traceparent,
            )
            outbox.add(registration)
            log.warning(
                "series %s of association %s, left in the journal by an earlier run"
                " (killed, or stopped while its outbox could not be written): registration"
                " of %d file(s) in the outbox: task %s",
                journaled.kwargs.get("SeriesInstanceUID"),
                journaled.association_id,
                files,
                registration.task_id,
            )
            registered.add(digest)
            for hold in others:  # dead: their files are counted in this registration
                if hold.path.parent != folder:
                    with contextlib.suppress(OSError):
                        hold.path.unlink()
        path.unlink()
        return 1 if files else 0


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _owner_alive(folder: Path) -> bool:
    """Whether the process of a journal folder lives (when in doubt: yes).

    A folder being recovered counts as alive (its recoverer holds the lock), and one
    without a lock file yet (being created) too: never judged dead by mistake.
    """
    try:
        with judge_owner(folder) as owner:
            return owner in (Owner.ALIVE, Owner.UNKNOWN)
    except OSError:
        return True


def _sync_entry(path: str, folder: str) -> None:
    """fsync an entry, then its folder (the rename that put it there)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _sync_folder(folder)


def _sync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
