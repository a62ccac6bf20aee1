"""Without fsync, an instance below the streaming size is written as it arrives.

Its answer then waits only for the write of its last fragment (a 512 KiB CT slice at one
association: the sender is still sending while the first fragments are written). Where
FILES_ROOT is in memory, an instance of any size is (no disk to wait for); on a disk, one
larger than a batch still streams through the executor. What must hold all the same: the
file holds exactly the data set, nothing is written before its head is known (a refused
instance leaves no byte), a failed write and an abandoned instance leave nothing behind,
and with fsync every instance keeps its one trip to the executor.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from oxidicom.dicom.errors import DatasetError
from oxidicom.storage import writer as writer_module
from oxidicom.storage.writer import EARLY_WRITE_BYTES, InstanceWriter, StorageError, Store
from tests.storage.test_writer_refusals import (
    FullDiskAt,
    answered,
    dataset,
    left_behind,
    open_files_under,
)
from tests.storage.writer_twins import writer_twin_fixture

writer_twin = writer_twin_fixture()

MR = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
FRAGMENT = 16 * 1024
#: 64 x 64 x 2 bytes of pixels and 600 KiB of private data: an instance of about 620 KiB.
BODY_BYTES = 600 * 1024


def begin(store: Store, sop_instance_uid: str) -> InstanceWriter:
    return store.begin(
        pacs_name="PACS",
        sop_class_uid=MR,
        sop_instance_uid=sop_instance_uid,
        transfer_syntax_uid=EXPLICIT_LE,
    )


def feed(writer: InstanceWriter, body: bytes, upto: int | None = None) -> None:
    """``body`` (up to ``upto``) in fragments of FRAGMENT bytes, as reads deliver it."""
    view = memoryview(body)
    for start in range(0, len(body) if upto is None else upto, FRAGMENT):
        assert writer.write(view[start : start + FRAGMENT]) is None  # never waits


def temporary_files(store: Store) -> list[Path]:
    return [p for p in left_behind(store) if p.name.endswith(".part")]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "files")  # the default streaming size, 4 MiB
    store.prepare()
    store.sync_files = False  # whatever filesystem tmp_path is on
    store.memory_backed = False
    return store


def head_first() -> tuple[str, bytes]:
    """A data set whose private bytes come after every attribute the path needs."""
    return dataset(private_bytes=BODY_BYTES, private_group=0x0029)


async def test_the_data_set_is_on_disk_before_its_last_fragment(store: Store) -> None:
    uid, body = head_first()
    writer = begin(store, uid)
    fed = (len(body) - 1) // FRAGMENT * FRAGMENT  # all but the last fragment
    feed(writer, body, upto=fed)
    (temporary,) = temporary_files(store)
    # All but what gathered since the last write (less than EARLY_WRITE_BYTES).
    assert temporary.stat().st_size > fed - EARLY_WRITE_BYTES
    assert writer.write(memoryview(body)[fed:]) is None
    placed = writer.finish()
    assert placed.done()  # on the loop: answered in the same batch as the last read
    stored = placed.result()
    final = store.root / stored.series_dir / stored.file_name
    content = final.read_bytes()
    assert content.endswith(body)
    assert len(content) == stored.size
    assert temporary_files(store) == []
    assert open_files_under(store.root) == []


async def test_the_file_is_the_one_the_whole_write_makes(tmp_path: Path) -> None:
    """Early or in one go, the same bytes: only when they are written differs."""
    uid, body = head_first()
    files = []
    for name, fragment in (("early", FRAGMENT), ("whole", len(body))):
        store = Store(tmp_path / name)
        store.prepare()
        store.sync_files = False
        writer = begin(store, uid)
        view = memoryview(body)
        for start in range(0, len(body), fragment):
            writer.write(view[start : start + fragment])
        stored = writer.finish().result()
        files.append((store.root / stored.series_dir / stored.file_name).read_bytes())
    assert files[0] == files[1]


def small_batches(tmp_path: Path, *, memory_backed: bool) -> Store:
    """A store whose batches (128 KiB) are far smaller than the instance (620 KiB)."""
    store = Store(tmp_path / "files", flush_bytes=128 * 1024)
    store.prepare()
    store.sync_files = False
    store.memory_backed = memory_backed  # whatever filesystem tmp_path is on
    return store


async def test_in_memory_an_instance_larger_than_a_batch_is_written_on_the_loop(
    tmp_path: Path,
) -> None:
    """On tmpfs: no executor, no batch held; the file grows with the fragments, and the
    answer is ready as the last fragment is written."""
    store = small_batches(tmp_path, memory_backed=True)
    uid, body = head_first()
    writer = begin(store, uid)
    view = memoryview(body)
    fed = 0
    for start in range(0, len(body) - FRAGMENT, FRAGMENT):
        assert writer.write(view[start : start + FRAGMENT]) is None  # never waits
        fed = start + FRAGMENT
        if fed >= 2 * EARLY_WRITE_BYTES:
            (temporary,) = temporary_files(store)
            assert temporary.stat().st_size > fed - EARLY_WRITE_BYTES
    assert fed > 4 * store.flush_bytes
    assert writer.write(view[fed:]) is None
    placed = writer.finish()
    assert placed.done()  # placed on the loop, in the same batch as the last read
    stored = placed.result()
    assert (store.root / stored.series_dir / stored.file_name).read_bytes().endswith(body)
    assert temporary_files(store) == []
    assert open_files_under(store.root) == []


async def test_on_a_disk_an_instance_larger_than_a_batch_streams_through_the_executor(
    tmp_path: Path,
) -> None:
    """Without fsync too: a disk can make a write wait, which the loop must not."""
    store = small_batches(tmp_path, memory_backed=False)
    uid, body = head_first()
    writer = begin(store, uid)
    view = memoryview(body)
    waits = 0
    for start in range(0, len(body), FRAGMENT):
        pending = writer.write(view[start : start + FRAGMENT])
        if pending is not None:
            waits += 1
            await pending
    placed = writer.finish()
    assert not placed.done()  # the last batch, closed and renamed by the executor
    stored = await placed
    assert waits > 0
    assert (store.root / stored.series_dir / stored.file_name).read_bytes().endswith(body)
    assert temporary_files(store) == []
    assert open_files_under(store.root) == []


async def test_nothing_is_written_before_the_head_is_known(store: Store) -> None:
    """Private bytes before PatientName: the head is complete only at the end. A data set
    that is not the instance its command names (A900) then leaves no byte, ever."""
    _uid, body = dataset(private_bytes=BODY_BYTES)
    writer = begin(store, "1.2.3.999")
    view = memoryview(body)
    for start in range(0, len(body), FRAGMENT):
        writer.write(view[start : start + FRAGMENT])
        assert left_behind(store) == []  # after every fragment
    placed = writer.finish()
    assert isinstance(placed.exception(), DatasetError)
    assert left_behind(store) == []


async def test_with_fsync_the_instance_is_written_in_one_trip(store: Store) -> None:
    store.sync_files = True
    uid, body = head_first()
    writer = begin(store, uid)
    feed(writer, body)
    assert left_behind(store) == []  # nothing before the end
    stored = await writer.finish()
    assert (store.root / stored.series_dir / stored.file_name).read_bytes().endswith(body)


async def test_a_failed_early_write_leaves_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC in the second early write: A700, answered once nothing of it is left."""
    full_disk = FullDiskAt(2, writer_module._write_all)
    monkeypatch.setattr(writer_module, "_write_all", full_disk)
    uid, body = head_first()
    writer = begin(store, uid)
    feed(writer, body)
    assert writer.refused
    placed = writer.finish()
    await answered(placed)
    assert left_behind(store) == []
    assert open_files_under(store.root) == []
    error = placed.exception()
    assert isinstance(error, StorageError)
    assert "No space left on device" in error.comment
    assert full_disk.calls == 2


async def test_a_failed_rename_leaves_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(temp: str, directory: str, final: str) -> None:
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(store, "place", refuse)
    uid, body = head_first()
    writer = begin(store, uid)
    feed(writer, body)
    assert temporary_files(store) != []  # written early
    placed = writer.finish()
    assert isinstance(placed.exception(), StorageError)
    assert left_behind(store) == []
    assert open_files_under(store.root) == []


async def test_an_abandoned_instance_written_early_leaves_nothing(store: Store) -> None:
    uid, body = head_first()
    writer = begin(store, uid)
    feed(writer, body, upto=len(body) // 2)
    assert temporary_files(store) != []
    writer.abandon()  # the association ended inside the data set
    await store.drain()
    assert left_behind(store) == []
    assert open_files_under(store.root) == []
