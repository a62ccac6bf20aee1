"""Every byte a sender sent is the byte stored, under the load that reuses receive buffers.

The receiver reads into buffers it owns and lends them to the kernel again once no view of
them is alive (oxidicom/aio/receive_buffer.py): a mistake there would store one
association's bytes in another's file, silently. Here four storescu send the two sample
series and a dcmconv'd copy of one at once, with PDUs of 16 KiB (so reads, PDVs and files
interleave finely), and every stored file's data set, element by element, and its pixel
data, byte by byte, is compared with what was sent.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest

from tests.integration.conftest import require_tool
from tests.integration.receiver import start_receiver

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"


def send(port: int, ae_title: str, files: list[Path]) -> None:
    subprocess.run(
        [STORESCU, "-aet", ae_title, "-aec", "ChRIS", "--max-pdu", "16384", "127.0.0.1",
         str(port), *map(str, files)],
        check=True, capture_output=True, timeout=600, env={**os.environ, "TCP_NODELAY": "1"},
    )  # fmt: skip


def test_concurrent_senders_store_exactly_the_bytes_they_sent(
    tmp_path: Path, sample_data: Path
) -> None:
    require_tool(STORESCU)
    sag = sorted((sample_data / "SAG-anon").glob("*.dcm"))
    structural = sorted((sample_data / "example-dicom-structural" / "dicoms").glob("*.dcm"))
    receiver = start_receiver(
        tmp_path / "receiver",
        {"OXIDICOM_SCP_MAX_PDU_LENGTH": "16384", "OXIDICOM_FSYNC": "false"},
    )
    senders = {
        "SAGA": sag[: len(sag) // 2],
        "SAGB": sag[len(sag) // 2 :],
        "STRUCTA": structural[: len(structural) // 2],
        "STRUCTB": structural[len(structural) // 2 :],
    }
    try:
        with ThreadPoolExecutor(len(senders)) as pool:
            for done in [pool.submit(send, receiver.port, ae, f) for ae, f in senders.items()]:
                done.result()
    finally:
        assert receiver.stop() == 0, receiver.log()
    stored = {
        str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID): path
        for path in receiver.stored_files()
    }
    sent = [*sag, *structural]
    assert len(stored) == len(sent)
    for source in sent:
        original = pydicom.dcmread(source)
        copy = pydicom.dcmread(stored[str(original.SOPInstanceUID)])
        assert copy.PixelData == original.PixelData, source.name
        # Every element of the data set, by tag and value (the meta is ours to write).
        assert [(e.tag, e.value) for e in copy if e.tag != 0x7FE00010] == [
            (e.tag, e.value) for e in original if e.tag != 0x7FE00010
        ], source.name
