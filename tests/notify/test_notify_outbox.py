"""The registration outbox: durable JSON entries, claimed with flock across processes."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oxidicom.notify.outbox import INVALID_SUFFIX, Outbox, Registration

KWARGS = {"SeriesInstanceUID": "1.2.3", "ndicom": 2, "PatientName": "Müller"}


def new_outbox(tmp_path: Path) -> Outbox:
    outbox = Outbox(tmp_path / "outbox")
    outbox.prepare()
    return outbox


def add(outbox: Outbox, queue: str = "main2") -> tuple[str, Registration]:
    registration = Registration.new("pacsfiles.tasks.register_pacs_series", queue, KWARGS)
    return outbox.add(registration), registration


def test_an_entry_is_readable_json_for_an_operator(tmp_path: Path) -> None:
    outbox = new_outbox(tmp_path)
    name, registration = add(outbox)
    path = outbox.directory / name
    document = json.loads(path.read_text())
    assert document == {
        "version": 1,
        "task": "pacsfiles.tasks.register_pacs_series",
        "task_id": registration.task_id,
        "queue": "main2",
        "created": registration.created,
        "attempts": 0,
        "last_error": None,
        "association_id": None,
        "traceparent": None,
        "kwargs": KWARGS,
    }
    assert document["created"].endswith("Z")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # patient data
    assert os.listdir(outbox.directory) == [name]  # no temporary file left


def test_an_entry_without_trace_fields_still_reads(tmp_path: Path) -> None:
    outbox = new_outbox(tmp_path)
    name, registration = add(outbox)
    path = outbox.directory / name
    document = json.loads(path.read_text())
    del document["association_id"], document["traceparent"]
    path.write_text(json.dumps(document))
    claim = outbox.claim(name)
    assert claim is not None
    assert claim.registration.task_id == registration.task_id
    assert claim.registration.traceparent is None
    claim.close()


def test_names_are_oldest_first(tmp_path: Path) -> None:
    outbox = new_outbox(tmp_path)
    names = [add(outbox)[0] for _ in range(5)]
    (outbox.directory / "notes.txt").write_text("not an entry")
    assert outbox.names() == names == sorted(names)


def test_claim_then_done_removes_the_entry(tmp_path: Path) -> None:
    outbox = new_outbox(tmp_path)
    name, registration = add(outbox)
    claim = outbox.claim(name)
    assert claim is not None
    assert claim.registration == registration
    claim.done()
    assert outbox.names() == []
    assert outbox.claim(name) is None


def test_a_claimed_entry_cannot_be_claimed_again(tmp_path: Path) -> None:
    outbox = new_outbox(tmp_path)
    name, _ = add(outbox)
    first = outbox.claim(name)
    assert first is not None
    assert outbox.claim(name) is None  # flock is per open file: refused even in-process
    first.close()
    second = outbox.claim(name)
    assert second is not None
    second.close()


def test_a_failed_attempt_is_counted_and_the_entry_stays(tmp_path: Path) -> None:
    outbox = new_outbox(tmp_path)
    name, _ = add(outbox)
    for attempt in (1, 2):
        claim = outbox.claim(name)
        assert claim is not None
        claim.failed("ConnectionError: broker gone")
        document = json.loads((outbox.directory / name).read_text())
        assert document["attempts"] == attempt
        assert document["last_error"] == "ConnectionError: broker gone"
    assert outbox.names() == [name]
    assert os.listdir(outbox.directory) == [name]


def test_an_unreadable_entry_is_set_aside_and_kept(tmp_path: Path) -> None:
    outbox = new_outbox(tmp_path)
    broken = "00000000000000000001-broken.json"
    (outbox.directory / broken).write_text("{not json")
    assert outbox.claim(broken) is None
    assert outbox.names() == []
    assert (outbox.directory / f"{broken}{INVALID_SUFFIX}").read_text() == "{not json"


def test_lock_won_after_removal_sees_no_link(tmp_path: Path) -> None:
    """The premise of claim()'s link-count check: a late locker of a removed file."""
    outbox = new_outbox(tmp_path)
    name, _ = add(outbox)
    late = os.open(outbox.directory / name, os.O_RDONLY)
    claim = outbox.claim(name)
    assert claim is not None
    claim.done()
    fcntl.flock(late, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock is free again...
    assert os.fstat(late).st_nlink == 0  # ...but the file is gone
    os.close(late)


def test_prepare_removes_abandoned_temporary_files_only(tmp_path: Path) -> None:
    outbox = new_outbox(tmp_path)
    abandoned = outbox.directory / ".x.json.1.abcd.tmp"
    abandoned.write_text("half")
    in_progress = outbox.directory / ".y.json.2.abcd.tmp"
    in_progress.write_text("being written")
    fd = os.open(in_progress, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        outbox.prepare()
    finally:
        os.close(fd)
    assert not abandoned.exists()
    assert in_progress.exists()


HOLDER = textwrap.dedent(
    """
    import sys
    from oxidicom.notify.outbox import Outbox
    claim = Outbox(sys.argv[1]).claim(sys.argv[2])
    print("claimed" if claim else "refused", flush=True)
    sys.stdin.read()  # hold the claim until told (or killed)
    """
)


@pytest.mark.parametrize("how", ["exits", "is killed"])
def test_another_process_claim_excludes_us_until_it_is_gone(tmp_path: Path, how: str) -> None:
    outbox = new_outbox(tmp_path)
    name, _ = add(outbox)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(outbox.directory), name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "claimed"
        assert outbox.claim(name) is None
        if how == "exits":
            holder.stdin.close()
        else:
            holder.kill()
        holder.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    claim = outbox.claim(name)  # the kernel released the dead holder's lock
    assert claim is not None
    claim.close()
