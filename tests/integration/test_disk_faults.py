"""A full or failing disk: status A700 for that instance, no partial file, the association
goes on (CONTRACT section 5), one LONK error for it and the series is still reported
(section 4, 3). The disk is a real 4 MiB tmpfs that really returns ENOSPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxidicom.storage.writer import DEFAULT_FLUSH_BYTES, TMP_DIR_NAME
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.conftest import IN_CI
from tests.integration.raw_peer import EXPLICIT_LE, MR_STORAGE, RawPeer, associate_rq, dataset_of
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.services import (
    AMQP_URL,
    NATS_URL,
    assert_progress_contract,
    celery_worker,
    lonk_collector,
    outbox_entries,
)

pytestmark = pytest.mark.integration

DISK_SIZE = 4 * DEFAULT_FLUSH_BYTES  # room for one streamed instance of the tests below


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mountpoint = tmp_path / "disk"
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


@pytest.fixture
def disk_receiver(small_disk: Path, tmp_path: Path) -> Iterator[RunningReceiver]:
    files_root = small_disk / "files"
    receiver = start_receiver(tmp_path / "run", {"OXIDICOM_FILES_ROOT": str(files_root)})
    receiver.files_root = files_root
    yield receiver
    assert receiver.stop() == 0
    assert "Traceback" not in receiver.log()


def instance(pixels: int, number: int, series_uid: str | None = None) -> tuple[str, bytes]:
    """(SOPInstanceUID, data set) of an MR instance of about ``pixels`` bytes."""
    side = int((pixels // 2) ** 0.5)
    series = {"series_uid": series_uid} if series_uid is not None else {}
    ds = mr_instance(instance_number=number, rows=side, columns=side, **series)
    buffer = io.BytesIO()
    write_part10(ds, buffer)  # type: ignore[arg-type]
    return str(ds.SOPInstanceUID), dataset_of(buffer.getvalue())


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk until only about ``leave`` bytes are free."""
    filler = disk / "filler"
    with open(filler, "wb") as out, contextlib.suppress(OSError):  # ENOSPC: the disk is full
        out.write(b"\x00" * DISK_SIZE)
    size = filler.stat().st_size
    with open(filler, "r+b") as out:
        out.truncate(max(size - leave, 0))
    return filler


def nothing_partial(receiver: RunningReceiver, stored: set[str]) -> None:
    names = {p.name.split("-", 1)[1][:-4] for p in receiver.stored_files()}
    assert names == stored
    assert list((receiver.files_root / TMP_DIR_NAME).rglob("*.part")) == []


@pytest.mark.parametrize(
    "size",
    [200_000, 3 * DEFAULT_FLUSH_BYTES // 2],
    ids=["small instance (one write)", "streamed instance (over the flush threshold)"],
)
def test_a_full_disk_fails_one_instance_and_the_association_goes_on(
    disk_receiver: RunningReceiver, small_disk: Path, size: int
) -> None:
    first_uid, first = instance(size, 1)
    second_uid, second = instance(size, 2)
    with RawPeer.connect(disk_receiver.port) as peer:
        peer.associate(associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
        filler = fill(small_disk, leave=size // 3)
        assert peer.c_store(first, first_uid) == 0xA700
        nothing_partial(disk_receiver, set())
        filler.unlink()
        assert peer.c_store(second, second_uid, message_id=2) == 0x0000
        peer.release()
    nothing_partial(disk_receiver, {second_uid})
    disk_receiver.wait_for_log(rf"C-STORE-RQ of {first_uid} refused: status A700 .*No space left")


def test_a_read_only_disk_fails_and_recovers(
    disk_receiver: RunningReceiver, small_disk: Path
) -> None:
    first_uid, first = instance(20_000, 1)
    second_uid, second = instance(20_000, 2)
    with RawPeer.connect(disk_receiver.port) as peer:
        peer.associate(associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
        assert _mount("-o", "remount,ro", str(small_disk)).returncode == 0
        try:
            assert peer.c_store(first, first_uid) == 0xA700
        finally:
            assert _mount("-o", "remount,rw", str(small_disk)).returncode == 0
        assert peer.c_store(second, second_uid, message_id=2) == 0x0000
        peer.release()
    nothing_partial(disk_receiver, {second_uid})
    disk_receiver.wait_for_log(r"status A700 .*Read-only file system")


def store_with_a_full_disk_for_the_second(
    receiver: RunningReceiver, disk: Path, series_uid: str, size: int
) -> tuple[list[str], list[int]]:
    """One association from DISKPACS storing three instances of a series; the disk is full
    while the second is sent. Their SOPInstanceUIDs and statuses."""
    uids, statuses = [], []
    with RawPeer.connect(receiver.port) as peer:
        peer.associate(associate_rq("DISKPACS", contexts=((MR_STORAGE, EXPLICIT_LE),)))
        for number in (1, 2, 3):
            uid, dataset = instance(size, number, series_uid)
            uids.append(uid)
            filler = fill(disk, leave=size // 3) if number == 2 else None
            statuses.append(peer.c_store(dataset, uid, message_id=number))
            if filler is not None:
                filler.unlink()
        peer.release()
    return uids, statuses


async def test_a_full_disk_sends_one_lonk_error_and_the_series_is_still_reported(
    small_disk: Path, tmp_path: Path
) -> None:
    """Of three instances of one series the second meets a full disk: exactly one LONK
    error (0x02 + UTF-8 naming the cause) on the series' subject, and progress, done and
    one registration for the two that were stored."""
    series_uid = "1.2.826.0.1.3680043.8.498.161"
    size = 200_000
    with celery_worker() as worker:
        async with lonk_collector() as lonk:
            files_root = small_disk / "files"
            env = {
                "OXIDICOM_FILES_ROOT": str(files_root),
                "OXIDICOM_AMQP_ADDRESS": AMQP_URL,
                "OXIDICOM_QUEUE_NAME": worker.queue,
                "OXIDICOM_NATS_ADDRESS": NATS_URL,
                "OXIDICOM_ROOT_SUBJECT": lonk.root_subject,
                "OXIDICOM_PROGRESS_INTERVAL": "0s",
            }
            receiver = await asyncio.to_thread(start_receiver, tmp_path / "run", env)
            receiver.files_root = files_root
            try:
                uids, statuses = await asyncio.to_thread(
                    store_with_a_full_disk_for_the_second, receiver, small_disk, series_uid, size
                )
                assert statuses == [0x0000, 0xA700, 0x0000]
                await asyncio.to_thread(worker.wait_for_registrations, 1)
            finally:
                assert await asyncio.to_thread(receiver.stop) == 0, receiver.log()
            nothing_partial(receiver, {uids[0], uids[2]})
            assert outbox_entries(receiver.outbox_dir) == []
            await asyncio.to_thread(worker.drain)
            [task] = worker.registrations()
            assert (task["SeriesInstanceUID"], task["pacs_name"], task["ndicom"]) == (
                series_uid,
                "DISKPACS",
                2,
            )
            await lonk.settle()
            subject = lonk.subject("DISKPACS", series_uid)
            payloads = [data for s, data in lonk.messages if s == subject]
            [error] = [p for p in payloads if p[:1] == b"\x02"]
            assert "No space left on device" in error[1:].decode("utf-8")
            messages = lonk.decoded(subject)
            assert messages.index(f"error:{error[1:].decode()}") == 1  # as it happened
            assert_progress_contract([m for m in messages if not m.startswith("error:")], 2)
            assert {s for s, _ in lonk.messages} == {subject}
            assert "Traceback" not in receiver.log()
