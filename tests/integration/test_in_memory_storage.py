"""FILES_ROOT on tmpfs: an instance of any size is written on the loop as it arrives.

No executor and no batch held (oxidicom/storage/writer.py, EARLY_WRITE_BYTES): a 64 MiB
instance costs the receiving process no more memory than the reads in flight, where on a
disk two 4 MiB batches are held. What must hold as on a disk: the stored file is the one
sent, byte for byte, and nothing is left in the temporary folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from tests.dicom_factory import mr_instance, with_transfer_syntax
from tests.integration.conftest import require_tool
from tests.integration.many_series import memory_kib
from tests.integration.receiver import start_receiver

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"
SHM = Path("/dev/shm")
MIB = 1024 * 1024


def send(port: int, path: Path) -> None:
    subprocess.run(
        [STORESCU, "-aec", "ChRIS", "127.0.0.1", str(port), str(path)],
        check=True, capture_output=True, timeout=300, env={**os.environ, "TCP_NODELAY": "1"},
    )  # fmt: skip


@pytest.fixture
def memory_folder() -> Iterator[Path]:
    mounted = subprocess.run(
        ["stat", "-f", "-c", "%T", str(SHM)], capture_output=True, text=True, check=False
    ).stdout.strip()
    if mounted != "tmpfs":
        pytest.skip("no tmpfs at /dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="oxidicom-test-", dir=SHM))
    yield folder
    shutil.rmtree(folder)


def test_a_large_instance_on_tmpfs_is_stored_whole_in_bounded_memory(
    tmp_path: Path, memory_folder: Path
) -> None:
    require_tool(STORESCU)
    frames = 128  # 512 x 512 x 2 bytes each: 64 MiB of pixels, 16 of the batches on a disk
    ds = with_transfer_syntax(
        mr_instance(rows=512, columns=512, frames=frames), ExplicitVRLittleEndian
    )
    digest = hashlib.sha256(ds.PixelData).hexdigest()
    large = tmp_path / "large.dcm"
    ds.save_as(large, enforce_file_format=True)
    del ds
    small = tmp_path / "small.dcm"
    with_transfer_syntax(mr_instance(), ExplicitVRLittleEndian).save_as(
        small, enforce_file_format=True
    )
    receiver = start_receiver(memory_folder, {"OXIDICOM_WORKERS": "1"})
    try:
        (pid,) = receiver.serving_pids()
        send(receiver.port, small)  # what the first instance loads is not the large one's
        before_kib = memory_kib(pid)["VmHWM"]
        send(receiver.port, large)
        growth_kib = memory_kib(pid)["VmHWM"] - before_kib
    finally:
        assert receiver.stop() == 0, receiver.log()
    (stored,) = [p for p in receiver.stored_files() if p.stat().st_size > 64 * MIB]
    copy = pydicom.dcmread(stored)
    assert copy.NumberOfFrames == frames
    assert hashlib.sha256(copy.PixelData).hexdigest() == digest
    # The reads in flight (slabs of 512 KiB) and no more; two batches would be 8 MiB.
    assert growth_kib < 6 * 1024, f"peak RSS +{growth_kib / 1024:.1f} MiB for 64 MiB"
    temporary = memory_folder / "files" / ".oxidicom-tmp"
    assert [p for p in temporary.rglob("*") if p.is_file()] == []
