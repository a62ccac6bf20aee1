"""The series journal: entries of live processes are left alone, those of dead ones become
outbox registrations counted from the files on disk."""

from __future__ import annotations

import json
from pathlib import Path

from oxidicom.notify.celery import TASK_NAME
from oxidicom.notify.journal import JournalEntry, SeriesJournal
from oxidicom.notify.outbox import Outbox

SERIES = "SERVICES/PACS/PACS/P-Doe-19800101/Study-ACC-20240102/00003-T1-abcdef0"


def registration(series_dir: str = SERIES, uid: str = "1.2.3") -> JournalEntry:
    kwargs = {"SeriesInstanceUID": uid, "path": series_dir, "ndicom": 1, "pacs_name": "PACS"}
    return JournalEntry("main2", kwargs, association_id="abc-1")


def files_in_series(root: Path, count: int, series_dir: str = SERIES) -> None:
    folder = root / series_dir
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{i:04d}-1.2.3.{i}.dcm").write_bytes(b"x")
    (folder / "notes.txt").write_text("not an instance")


def dead_journal(tmp_path: Path, entries: dict[str, JournalEntry]) -> SeriesJournal:
    """A journal whose process 'died': entries left, lock let go."""
    journal = SeriesJournal(tmp_path / "outbox", tmp_path / "files")
    journal.prepare()
    for key, entry in entries.items():
        journal.record(key, entry)
    journal.release()  # keeps a folder that still has entries
    return journal


def test_record_and_forget_leave_nothing(tmp_path: Path) -> None:
    journal = SeriesJournal(tmp_path / "outbox", tmp_path / "files")
    journal.prepare()
    journal.record("abc-1-1", registration())
    [entry] = journal.work_dir.path.glob("*.json")
    assert json.loads(entry.read_text())["kwargs"]["path"] == SERIES
    journal.forget("abc-1-1")
    journal.forget("abc-1-1")  # twice is harmless
    journal.release()
    assert list(journal.root.iterdir()) == []


def test_dead_entries_become_registrations_counted_on_disk(tmp_path: Path) -> None:
    files_in_series(tmp_path / "files", 3)
    dead = dead_journal(tmp_path, {"abc-1-1": registration()})
    outbox = Outbox(tmp_path / "outbox")
    outbox.prepare()
    starting = SeriesJournal(tmp_path / "outbox", tmp_path / "files")
    starting.prepare()
    assert starting.recover(outbox) == 1
    [name] = outbox.names()
    entry = json.loads((outbox.directory / name).read_text())
    assert entry["kwargs"]["ndicom"] == 3  # the .dcm files, not the text file
    assert entry["kwargs"]["path"] == SERIES
    assert entry["association_id"] == "abc-1"
    assert entry["task"] == TASK_NAME
    assert entry["queue"] == "main2"
    assert not dead.work_dir.path.exists()
    assert starting.recover(outbox) == 0  # once only
    assert len(outbox.names()) == 1


def test_live_journals_are_left_alone(tmp_path: Path) -> None:
    files_in_series(tmp_path / "files", 2)
    live = SeriesJournal(tmp_path / "outbox", tmp_path / "files")
    live.prepare()
    live.record("abc-1-1", registration())
    outbox = Outbox(tmp_path / "outbox")
    outbox.prepare()
    other = SeriesJournal(tmp_path / "outbox", tmp_path / "files")
    other.prepare()
    assert other.recover(outbox) == 0
    assert outbox.names() == []
    assert len(list(live.work_dir.path.glob("*.json"))) == 1


def test_sibling_workers_are_not_other_receivers(tmp_path: Path) -> None:
    """The workers of one supervisor share a family: each counts the live journals of
    other receivers beside it, not its siblings' (a restart's waiting registrations are
    then "from an earlier run", as with one process)."""
    outbox = tmp_path / "outbox"
    journals = [
        SeriesJournal(outbox, tmp_path / "files", family=family)
        for family in ("a1b2c3d4.", "a1b2c3d4.", "", "ffff0000.")
    ]
    for journal in journals:
        journal.prepare()
    first, sibling, alone, other_workers = journals
    assert first.work_dir.path.name.startswith("a1b2c3d4.")
    assert first.running_others() == 2  # the receiver alone and the other family's worker
    assert sibling.running_others() == 2
    assert alone.running_others() == 3  # one process: everyone else is another receiver
    assert other_workers.running_others() == 3


def test_a_series_without_files_is_not_registered(tmp_path: Path) -> None:
    dead_journal(tmp_path, {"abc-1-1": registration("SERVICES/PACS/gone")})
    outbox = Outbox(tmp_path / "outbox")
    outbox.prepare()
    assert SeriesJournal(tmp_path / "outbox", tmp_path / "files").recover(outbox) == 0
    assert outbox.names() == []


def test_an_unreadable_entry_is_kept_aside(tmp_path: Path) -> None:
    dead = dead_journal(tmp_path, {"abc-1-1": registration()})
    [entry] = dead.work_dir.path.glob("*.json")
    entry.write_text("{not json")
    outbox = Outbox(tmp_path / "outbox")
    outbox.prepare()
    assert SeriesJournal(tmp_path / "outbox", tmp_path / "files").recover(outbox) == 0
    assert outbox.names() == []
    [aside] = (tmp_path / "outbox").glob("journal-*.invalid")
    assert aside.read_text() == "{not json"
