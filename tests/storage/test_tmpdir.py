"""Temporary folders when several receivers share FILES_ROOT: a live one's are never removed."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from oxidicom.storage import tmpdir
from oxidicom.storage.tmpdir import GRACE_SECONDS, LOCK_NAME, WorkDir, remove_stale
from oxidicom.storage.writer import TMP_DIR_NAME, InstanceWriter, Store
from tests.integration.receiver import start_receiver

_HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def _age(path: Path, seconds: float = 2 * GRACE_SECONDS) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _folder_of_another_process(tmp_root: Path, name: str) -> tuple[Path, subprocess.Popen[str]]:
    folder = tmp_root / name
    folder.mkdir(parents=True)
    (folder / "7.part").write_bytes(b"half an instance")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(folder / LOCK_NAME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    _age(folder)
    return folder, holder


def _begin(store: Store) -> InstanceWriter:
    return store.begin(
        pacs_name="P",
        sop_class_uid="1.2",
        sop_instance_uid="1.2.3",
        transfer_syntax_uid="1.2.840.10008.1.2",
    )


def test_temporary_files_go_in_our_own_locked_folder(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.prepare()
    writer = _begin(store)
    work = store.work_dir.path
    assert work.parent == tmp_path / TMP_DIR_NAME
    assert writer._temp.startswith(f"{work}/") and writer._temp.endswith(".part")
    assert (work / LOCK_NAME).exists()
    other = Store(tmp_path)  # a second store (or process) gets a folder of its own
    other.prepare()
    assert other.work_dir.path != work
    writer.abandon()
    store.close()
    other.close()
    assert not list((tmp_path / TMP_DIR_NAME).iterdir())


def test_stale_cleanup_spares_live_and_young_folders(tmp_path: Path) -> None:
    tmp_root = tmp_path / TMP_DIR_NAME
    own = WorkDir(tmp_root)
    own.claim()
    (own.path / "1.part").write_bytes(b"ours")
    _age(own.path)
    live, holder = _folder_of_another_process(tmp_root, "live")
    young = tmp_root / "young"  # no lock file yet: its owner may be being born
    young.mkdir()
    (young / "3.part").touch()
    dead_young = tmp_root / "dead-young"  # a lock file nobody holds: its owner died
    dead_young.mkdir()
    (dead_young / LOCK_NAME).touch()
    (dead_young / "6.part").touch()
    unlocked_old = tmp_root / "born-dead"
    unlocked_old.mkdir()
    (unlocked_old / "4.part").touch()
    _age(unlocked_old)
    old_loose = tmp_root / "123-4.part"
    old_loose.touch()
    _age(old_loose)
    young_loose = tmp_root / "123-5.part"
    young_loose.touch()
    try:
        # born-dead/4.part, dead-young/6.part and the old loose file
        assert remove_stale(tmp_root, own.path) == 3
        assert sorted(p.name for p in tmp_root.iterdir()) == sorted(
            [own.path.name, "live", "young", "123-5.part"]
        )
        assert (live / "7.part").exists() and (own.path / "1.part").exists()
        holder.kill()  # the other process dies; the kernel drops its lock
        holder.wait()
        _age(live)
        assert remove_stale(tmp_root, own.path) == 1
        assert not live.exists()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    own.release()  # not empty: stays, unlocked, for the next start to clean
    assert (own.path / "1.part").exists()


def test_receivers_sharing_files_root_keep_each_others_files(tmp_path: Path) -> None:
    # One process each: a folder each (workers have one each too, started in turn).
    shared = {"OXIDICOM_FILES_ROOT": str(tmp_path / "files"), "OXIDICOM_WORKERS": "1"}
    first = start_receiver(tmp_path / "a", {**shared, "OXIDICOM_OUTBOX_DIR": str(tmp_path / "oa")})
    tmp_root = tmp_path / "files" / TMP_DIR_NAME
    (first_folder,) = tmp_root.iterdir()
    (first_folder / "9.part").write_bytes(b"an instance on its way")
    _age(first_folder)  # old enough to be removed, were its owner dead
    second = start_receiver(tmp_path / "b", {**shared, "OXIDICOM_OUTBOX_DIR": str(tmp_path / "ob")})
    try:
        assert (first_folder / "9.part").exists()
        assert len(list(tmp_root.iterdir())) == 2
        assert not any("temporary file" in line for line in second.lines)
        first.stop(signal.SIGKILL)
        third = start_receiver(
            tmp_path / "c", {**shared, "OXIDICOM_OUTBOX_DIR": str(tmp_path / "oc")}
        )
        third.wait_for_log(r"removed 1 temporary file\(s\) left by an earlier run")
        assert not first_folder.exists()
        assert third.stop() == 0
    finally:
        first.stop()
        assert second.stop() == 0
    assert not list(tmp_root.iterdir())  # clean stops leave nothing behind


FIRST, SECOND = "a" * 32, "b" * 32


@contextmanager
def _first_folder_being_judged(parent: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Work folders get the names FIRST then SECOND; FIRST exists, its lock held by a
    neighbour judging whether its owner is dead (as when two receivers start together)."""
    names = iter([FIRST, SECOND])
    monkeypatch.setattr(tmpdir.uuid, "uuid4", lambda: SimpleNamespace(hex=next(names)))
    (parent / FIRST).mkdir(parents=True)
    judge = os.open(parent / FIRST / LOCK_NAME, os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(judge, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(judge)


def test_a_lock_held_by_a_starting_neighbour_sends_us_to_a_fresh_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The owner of the judged folder must not fail: it starts over elsewhere.
    with _first_folder_being_judged(tmp_path, monkeypatch):
        work = WorkDir(tmp_path)
        work.claim()
        assert work.path == tmp_path / SECOND
        probe = os.open(work.path / LOCK_NAME, os.O_RDONLY)
        try:  # locked by the claimer: a third process would see it alive
            with pytest.raises(BlockingIOError):
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(probe)
        work.release()


def test_the_store_writes_into_the_folder_it_finally_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _first_folder_being_judged(tmp_path / TMP_DIR_NAME, monkeypatch):
        store = Store(tmp_path)
        store.prepare()
        writer = _begin(store)
        assert writer._temp.startswith(f"{tmp_path / TMP_DIR_NAME / SECOND}/")
        store.close()
