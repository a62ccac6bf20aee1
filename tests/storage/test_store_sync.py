"""Where a small instance is placed: on the loop without fsync (or where fsync does
nothing), through the executor with it; the file is the same either way."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxidicom.storage.writer import KNOWN_DIRS_MAX, Store, memory_backed
from tests.dicom_factory import mr_instance
from tests.storage.writer_twins import writer_twin_fixture

writer_twin = writer_twin_fixture()

MR = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
SHM = Path("/dev/shm")


def fs_type(path: Path) -> str:
    """The filesystem type as stat(1) names it (an oracle independent of the code)."""
    return subprocess.run(
        ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def memory_folder() -> Iterator[Path]:
    if not SHM.is_dir() or fs_type(SHM) != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="oxidicom-test-", dir=SHM))
    yield folder
    shutil.rmtree(folder)


def test_memory_backed_matches_stat(tmp_path: Path, memory_folder: Path) -> None:
    assert memory_backed(tmp_path) == (fs_type(tmp_path) in ("tmpfs", "ramfs"))
    assert memory_backed(memory_folder)
    assert memory_backed(memory_folder / "not" / "made" / "yet")


def test_sync_files_only_where_fsync_means_something(tmp_path: Path, memory_folder: Path) -> None:
    on_disk = not memory_backed(tmp_path)
    assert Store(tmp_path / "a", fsync=True).sync_files is on_disk
    assert Store(tmp_path / "b", fsync=False).sync_files is False
    assert Store(memory_folder / "c", fsync=True).sync_files is False


def test_a_store_knows_when_it_is_in_memory(tmp_path: Path, memory_folder: Path) -> None:
    """What lets an instance of any size be written on the loop (test_writer_early)."""
    assert Store(memory_folder / "a").memory_backed is True
    assert Store(tmp_path / "b").memory_backed is (fs_type(tmp_path) in ("tmpfs", "ramfs"))


def _dataset() -> tuple[str, bytes]:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    ds = mr_instance()
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = False
    buffer.is_little_endian = True
    write_dataset(buffer, ds)
    return str(ds.SOPInstanceUID), buffer.getvalue()


@pytest.mark.parametrize("fsync", [True, False])
async def test_small_instance_lands_whole(tmp_path: Path, fsync: bool) -> None:
    if fsync and memory_backed(tmp_path):
        pytest.skip("tmp_path is memory-backed: fsync is skipped there")
    store = Store(tmp_path, fsync=fsync)
    store.prepare()
    uid, body = _dataset()
    writer = store.begin(
        pacs_name="PACS", sop_class_uid=MR, sop_instance_uid=uid, transfer_syntax_uid=EXPLICIT_LE
    )
    view = memoryview(body)
    for start in range(0, len(body), 1000):  # fragments, as PDVs bring them
        assert writer.write(view[start : start + 1000]) is None
    placed = writer.finish()
    # Without fsync the file is placed at once (the answer goes out in the same batch).
    assert placed.done() is not fsync
    stored = await asyncio.wait_for(placed, 30)
    final = tmp_path / stored.series_dir / stored.file_name
    content = final.read_bytes()
    assert content.endswith(body)
    assert content[128:132] == b"DICM"
    assert stored.size == len(content)
    assert not list(store.work_dir.path.glob("*.part"))  # no temporary file left
    store.close()


def test_the_folders_remembered_are_bounded_and_a_forgotten_one_is_made_again(
    tmp_path: Path,
) -> None:
    """An archive migration places a folder per instance: what the store remembers of
    them must not grow with the life of the process."""
    store = Store(tmp_path / "files")
    store.prepare()
    try:
        for n in range(KNOWN_DIRS_MAX + 10):
            temp = tmp_path / "files" / f".t{n}"
            temp.write_bytes(b"x")
            directory = tmp_path / "files" / "SERVICES" / f"series-{n}"
            store.place(str(temp), str(directory), str(directory / "1.dcm"))
        assert len(store._known_dirs) <= KNOWN_DIRS_MAX
        # The first folder was forgotten; removed meanwhile, it is made again.
        first = tmp_path / "files" / "SERVICES" / "series-0"
        shutil.rmtree(first)
        temp = tmp_path / "files" / ".again"
        temp.write_bytes(b"y")
        store.place(str(temp), str(first), str(first / "1.dcm"))
        assert (first / "1.dcm").read_bytes() == b"y"
    finally:
        store.close()
