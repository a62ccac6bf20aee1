"""Acknowledged means registered: the outbox (and its series journal) on a disk that is
full or read-only while FILES_ROOT has room. The disk is a real 1 MiB tmpfs.

- The journal cannot be written: the first instance of a series is refused (A700) and no
  file of it is placed; the next instance of the series tries again.
- The outbox cannot be written when the association ends: the registration stays in the
  journal, is retried, and reaches CUBE exactly once when the disk has room; a receiver
  stopped meanwhile leaves it in the journal, and the next start registers it.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import IN_CI
from tests.integration.raw_peer import EXPLICIT_LE, MR_STORAGE, RawPeer, associate_rq
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.services import AMQP_URL, celery_worker, outbox_entries
from tests.integration.test_disk_faults import fill, instance

pytestmark = pytest.mark.integration

DISK_SIZE = 1024 * 1024
SERIES = "1.2.826.0.1.3680043.8.498.171"


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def outbox_disk(tmp_path: Path) -> Iterator[Path]:
    mountpoint = tmp_path / "outbox-disk"
    mountpoint.mkdir()
    result = _mount("-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mountpoint))
    if result.returncode != 0:
        message = f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def receiver_on(disk: Path, tmp: Path, env: dict[str, str] | None = None) -> RunningReceiver:
    outbox = disk / "outbox"
    receiver = start_receiver(tmp / "run", {"OXIDICOM_OUTBOX_DIR": str(outbox), **(env or {})})
    receiver.outbox_dir = outbox
    return receiver


def journal_files(receiver: RunningReceiver, pattern: str) -> list[Path]:
    return sorted((receiver.outbox_dir / ".journal").rglob(pattern))


def full(disk: Path) -> Callable[[], None]:
    return fill(disk, leave=0).unlink


def read_only(disk: Path) -> Callable[[], None]:
    assert _mount("-o", "remount,ro", str(disk)).returncode == 0

    def undo() -> None:
        assert _mount("-o", "remount,rw", str(disk)).returncode == 0

    return undo


@pytest.mark.parametrize(
    ("fault", "reason"),
    [(full, "No space left on device"), (read_only, "Read-only file system")],
    ids=["full", "read-only"],
)
def test_a_journal_that_cannot_be_written_refuses_the_first_instance_of_a_series(
    outbox_disk: Path,
    tmp_path: Path,
    fault: Callable[[Path], Callable[[], None]],
    reason: str,
) -> None:
    receiver = receiver_on(outbox_disk, tmp_path)
    try:
        first_uid, first = instance(20_000, 1, SERIES)
        second_uid, second = instance(20_000, 2, SERIES)
        with RawPeer.connect(receiver.port) as peer:
            peer.associate(associate_rq("JOURNALPACS", contexts=((MR_STORAGE, EXPLICIT_LE),)))
            undo = fault(outbox_disk)
            try:
                assert peer.c_store(first, first_uid) == 0xA700
            finally:
                undo()
            assert receiver.stored_files() == []  # refused before it was placed
            assert journal_files(receiver, "*.json") == []
            assert journal_files(receiver, ".*.tmp") == []
            # The series' next instance makes the promise the first could not.
            assert peer.c_store(second, second_uid, message_id=2) == 0x0000
            peer.release()
        receiver.wait_for_log(rf"registration of series {SERIES} \(1 file\(s\)\) in the outbox")
    finally:
        assert receiver.stop() == 0, receiver.log()
    receiver.wait_for_log(
        rf"C-STORE-RQ of {first_uid} refused: status A700 cannot record the series"
        rf" registration: {reason}"
    )
    assert [p.name.split("-", 1)[1][:-4] for p in receiver.stored_files()] == [second_uid]
    [entry] = outbox_entries(receiver.outbox_dir)
    assert (entry["kwargs"]["SeriesInstanceUID"], entry["kwargs"]["ndicom"]) == (SERIES, 1)
    assert "Traceback" not in receiver.log()


def store_two_then_fill_and_release(receiver: RunningReceiver, disk: Path) -> Path:
    """Two instances of SERIES (journaled), then the outbox disk is filled, then the
    association is released: its registration meets a full outbox. Returns the filler."""
    with RawPeer.connect(receiver.port) as peer:
        peer.associate(associate_rq("OUTBOXPACS", contexts=((MR_STORAGE, EXPLICIT_LE),)))
        for number in (1, 2):
            uid, dataset = instance(20_000, number, SERIES)
            assert peer.c_store(dataset, uid, message_id=number) == 0
        filler = fill(disk, leave=0)
        peer.release()
    return filler


async def test_an_outbox_full_at_the_end_registers_exactly_once_when_it_has_room(
    outbox_disk: Path, tmp_path: Path
) -> None:
    with celery_worker() as worker:
        env = {"OXIDICOM_AMQP_ADDRESS": AMQP_URL, "OXIDICOM_QUEUE_NAME": worker.queue}
        receiver = await asyncio.to_thread(receiver_on, outbox_disk, tmp_path, env)
        try:
            await asyncio.to_thread(receiver.wait_for_log, r"AMQP connected")
            filler = await asyncio.to_thread(store_two_then_fill_and_release, receiver, outbox_disk)
            await asyncio.to_thread(
                receiver.wait_for_log,
                r"ERROR .*cannot write 1 registration\(s\) to the outbox .*No space left"
                r".*they stay in the series journal",
            )
            assert outbox_entries(receiver.outbox_dir) == []
            assert len(journal_files(receiver, "*.json")) == 1
            filler.unlink()
            await asyncio.to_thread(
                receiver.wait_for_log, r"WARNING .*writable again: 1 delayed registration"
            )
            await asyncio.to_thread(worker.wait_for_registrations, 1)
        finally:
            assert await asyncio.to_thread(receiver.stop) == 0, receiver.log()
        await asyncio.to_thread(worker.drain)
        [task] = worker.registrations()
        assert (task["SeriesInstanceUID"], task["pacs_name"], task["ndicom"]) == (
            SERIES,
            "OUTBOXPACS",
            2,
        )
        assert outbox_entries(receiver.outbox_dir) == []
        assert journal_files(receiver, "*.json") == []
        assert "Traceback" not in receiver.log()


def test_registrations_unwritten_at_the_stop_are_registered_by_the_next_start(
    outbox_disk: Path, tmp_path: Path
) -> None:
    receiver = receiver_on(outbox_disk, tmp_path)
    try:
        filler = store_two_then_fill_and_release(receiver, outbox_disk)
        receiver.wait_for_log(r"cannot write 1 registration\(s\) to the outbox")
    finally:
        assert receiver.stop() == 0, receiver.log()
    receiver.wait_for_log(
        r"ERROR .*1 registration\(s\) could not be written to the outbox .* they stay in the"
        r" series journal .* registered at the next start"
    )
    assert len(journal_files(receiver, "*.json")) == 1
    filler.unlink()

    again = receiver_on(outbox_disk, tmp_path)
    try:
        again.wait_for_log(
            rf"series {SERIES} of association \S+, left in the journal by an earlier run"
            r" .*: registration of 2 file\(s\) in the outbox"
        )
    finally:
        assert again.stop() == 0, again.log()
    [entry] = outbox_entries(again.outbox_dir)
    assert (entry["kwargs"]["SeriesInstanceUID"], entry["kwargs"]["ndicom"]) == (SERIES, 2)
    assert journal_files(again, "*.json") == []
