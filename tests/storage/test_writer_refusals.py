"""A refused instance: the answer it gets, and nothing of it left when the answer is due.

Item 6 of issue 12: the data set must be the instance its C-STORE-RQ names (0xA900).
Item 2: when the instance had already reached the disk (streamed past ``flush_bytes``),
its failure is known only once its temporary file is closed and removed.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from oxidicom.dicom.errors import DatasetError
from oxidicom.storage.writer import InstanceWriter, StorageError, Store, StoredInstance
from tests.dicom_factory import mr_instance
from tests.storage.writer_twins import writer_twin_fixture

writer_twin = writer_twin_fixture()

MR = "1.2.840.10008.5.1.4.1.1.4"
CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
FLUSH = 64 * 1024
FRAGMENT = 16 * 1024


def dataset(
    private_bytes: int = 0, private_group: int = 0x0009, **overrides: object
) -> tuple[str, bytes]:
    """(SOPInstanceUID, explicit VR LE data set); ``private_bytes`` of a private OB element
    in ``private_group``: 0009, before PatientName, completes the head only once they went
    by; 0029 comes after every attribute the path needs."""
    ds = mr_instance(**overrides)
    if private_bytes:
        ds.add_new((private_group << 16) | 0x0010, "LO", "OXIDICOM TEST")
        ds.add_new((private_group << 16) | 0x1000, "OB", b"\x00" * private_bytes)
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = False
    buffer.is_little_endian = True
    write_dataset(buffer, ds)
    return str(ds.get("SOPInstanceUID", "")), buffer.getvalue()


def begin(store: Store, sop_instance_uid: str, sop_class_uid: str = MR) -> InstanceWriter:
    return store.begin(
        pacs_name="PACS",
        sop_class_uid=sop_class_uid,
        sop_instance_uid=sop_instance_uid,
        transfer_syntax_uid=EXPLICIT_LE,
    )


async def send(writer: InstanceWriter, body: bytes) -> asyncio.Future[StoredInstance]:
    view = memoryview(body)
    for start in range(0, len(body), FRAGMENT):
        pending = writer.write(view[start : start + FRAGMENT])
        if pending is not None:
            await pending
    return writer.finish()


def open_files_under(folder: Path) -> list[str]:
    """Descriptors of this process open on files under ``folder``."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"{folder}/") and not target.endswith("/.lock"):
            found.append(target)
    return found


class FullDiskAt:
    """``write_all`` that fails with ENOSPC at its ``call``-th call, and counts calls."""

    def __init__(self, call: int, real: Callable[[int, list[bytes | memoryview]], int]) -> None:
        self.call = call
        self.real = real
        self.calls = 0

    def __call__(self, fd: int, parts: list[bytes | memoryview]) -> int:
        self.calls += 1
        if self.calls == self.call:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real(fd, parts)


async def answered(placed: asyncio.Future[StoredInstance]) -> None:
    """Wait until ``placed``'s done-callbacks run: the moment the association answers."""
    done = asyncio.Event()
    placed.add_done_callback(lambda _: done.set())
    await done.wait()


def left_behind(store: Store) -> list[Path]:
    """Every file of the store but its lock: temporary and final files alike."""
    return [p for p in store.root.rglob("*") if p.is_file() and p.name != ".lock"]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "files", flush_bytes=FLUSH)
    store.prepare()
    return store


# -- the command and the data set must agree ---------------------------------------------


@pytest.mark.parametrize("private_bytes", [0, 4 * FLUSH], ids=["small", "streamed"])
async def test_another_sop_instance_uid_is_refused_a900(store: Store, private_bytes: int) -> None:
    uid, body = dataset(private_bytes)
    placed = await send(begin(store, "1.2.3.999"), body)
    with pytest.raises(DatasetError) as info:
        await placed
    assert info.value.status == 0xA900
    assert uid in info.value.comment and "1.2.3.999" in info.value.comment
    assert "SOPInstanceUID" in info.value.comment
    assert left_behind(store) == []


@pytest.mark.parametrize("private_bytes", [0, 4 * FLUSH], ids=["small", "streamed"])
async def test_another_sop_class_uid_is_refused_a900(store: Store, private_bytes: int) -> None:
    uid, body = dataset(private_bytes)
    placed = await send(begin(store, uid, sop_class_uid=CT), body)
    with pytest.raises(DatasetError) as info:
        await placed
    assert info.value.status == 0xA900
    assert MR in info.value.comment and CT in info.value.comment
    assert "SOPClassUID" in info.value.comment
    assert left_behind(store) == []


async def test_padding_is_no_difference(store: Store) -> None:
    _uid, body = dataset(SOPInstanceUID="1.2.3.4.5")  # odd length: padded with NUL
    assert b"1.2.3.4.5\x00" in body
    stored = await (await send(begin(store, "1.2.3.4.5"), body))
    assert stored.fields.sop_instance_uid == "1.2.3.4.5"
    assert stored.warnings == ()


async def test_a_data_set_without_sop_class_uid_is_stored_with_a_warning(store: Store) -> None:
    uid, body = dataset(SOPClassUID=None)
    stored = await (await send(begin(store, uid), body))
    assert stored.warnings == (
        f"SOPClassUID (0008,0016) missing from the data set; stored as {MR}",
    )
    assert (store.root / stored.series_dir / stored.file_name).is_file()


async def test_a_data_set_without_sop_instance_uid_stays_c001(store: Store) -> None:
    _uid, body = dataset(SOPInstanceUID=None)
    with pytest.raises(DatasetError) as info:
        await (await send(begin(store, "1.2.3"), body))
    assert info.value.status == 0xC001


async def test_the_next_good_instance_is_stored(store: Store) -> None:
    _uid, bad = dataset()
    with pytest.raises(DatasetError):
        await (await send(begin(store, "9.9.9"), bad))
    uid, good = dataset(instance_number=2)
    stored = await (await send(begin(store, uid), good))
    assert left_behind(store) == [store.root / stored.series_dir / stored.file_name]


# -- nothing left when the failure is known ---------------------------------------------


async def test_a_refusal_after_streaming_is_known_only_once_the_file_is_gone(
    store: Store,
) -> None:
    """The head (and its A900) comes after 4 flushes: the temporary file exists then."""
    _uid, body = dataset(4 * FLUSH)
    writer = begin(store, "1.2.3.999")
    view = memoryview(body)
    for start in range(0, len(body), FRAGMENT):
        pending = writer.write(view[start : start + FRAGMENT])
        if pending is not None:
            await pending
    assert writer.refused
    assert left_behind(store) != []  # it did reach the disk
    placed = writer.finish()
    await answered(placed)
    assert left_behind(store) == []
    assert open_files_under(store.root) == []
    assert isinstance(placed.exception(), DatasetError)


async def test_a_failed_write_is_known_only_once_the_file_is_gone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC in the second flush: A700 once the temporary file is closed and removed."""
    from oxidicom.storage import writer as writer_module

    full_disk = FullDiskAt(2, writer_module._write_all)
    wrapped = writer_module.aiofiles.os.wrap(full_disk)
    monkeypatch.setattr(writer_module, "_write_all_async", wrapped)
    uid, body = dataset(4 * FLUSH)
    placed = await send(begin(store, uid), body)
    await answered(placed)
    assert left_behind(store) == []
    assert open_files_under(store.root) == []
    assert isinstance(placed.exception(), StorageError)
    assert full_disk.calls == 2
