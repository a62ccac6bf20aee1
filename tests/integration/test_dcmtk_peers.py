"""The receiver against dcmtk's echoscu and storescu, started as real processes."""

from __future__ import annotations

import os
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest

from tests.integration.conftest import ECHOSCU, echoscu, require_tool
from tests.integration.receiver import RunningReceiver
from tests.sample_data import SAG_SERIES, STRUCTURAL_SERIES

STORESCU = "/usr/bin/storescu"
DCMCONV = "/usr/bin/dcmconv"

pytestmark = pytest.mark.integration


def storescu(receiver: RunningReceiver, *args: str | Path) -> subprocess.CompletedProcess[str]:
    require_tool(STORESCU)
    # Options first; paths (and the scan pattern) after host and port.
    options = [a for a in map(str, args) if a.startswith(("-", "+"))]
    files = [a for a in map(str, args) if not a.startswith(("-", "+"))]
    if "+sp" in options:
        options.append(files.pop(0))
    command = [
        STORESCU,
        "-aet",
        "OXITESTORTHANC",
        "-aec",
        "ChRIS",
        *options,
        "127.0.0.1",
        str(receiver.port),
        *files,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        # Debian's dcmtk leaves Nagle on unless told; the receiver must not depend on it,
        # but the tests should not wait for delayed ACKs either.
        env={**os.environ, "TCP_NODELAY": "1"},
    )


def expected_path(source: Path, series_dir: str) -> str:
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    return f"{series_dir}/{int(ds.InstanceNumber):04d}-{ds.SOPInstanceUID}.dcm"


def assert_same_dataset(copy: pydicom.Dataset, original: pydicom.Dataset) -> None:
    """Equal data sets; private elements compared by tag, as a sender converting between
    implicit and explicit VR may leave their VR unknown (UN)."""
    assert [e.tag for e in copy] == [e.tag for e in original]
    copy.remove_private_tags()
    original.remove_private_tags()
    assert copy == original


def test_echoscu_is_answered(receiver: RunningReceiver) -> None:
    require_tool(ECHOSCU)
    result = echoscu(receiver.port, "-v")
    assert result.returncode == 0, result.stderr
    assert "Received Echo Response (Success)" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("conversion", "proposal", "transfer_syntax"),
    [
        ("+ti", "-xi", "1.2.840.10008.1.2"),
        ("+te", "-xe", "1.2.840.10008.1.2.1"),
        ("+tb", "-xb", "1.2.840.10008.1.2.2"),
    ],
)
def test_storescu_transfer_syntax_is_kept(
    receiver: RunningReceiver,
    sample_data: Path,
    tmp_path: Path,
    conversion: str,
    proposal: str,
    transfer_syntax: str,
) -> None:
    """Three files in one association, each stored in the transfer syntax it was sent in."""
    require_tool(DCMCONV)
    originals = sorted((sample_data / "SAG-anon").glob("*.dcm"))[:3]
    sources = []
    for original in originals:
        converted = tmp_path / original.name
        subprocess.run([DCMCONV, conversion, original, converted], check=True, timeout=60)
        sources.append(converted)
    result = storescu(receiver, proposal, *sources)
    assert result.returncode == 0, result.stderr

    stored = receiver.stored_files()
    assert sorted(str(p.relative_to(receiver.files_root)) for p in stored) == sorted(
        expected_path(s, SAG_SERIES) for s in sources
    )
    for source in sources:
        original = pydicom.dcmread(source)
        copy = pydicom.dcmread(receiver.files_root / expected_path(source, SAG_SERIES))
        assert copy.file_meta.TransferSyntaxUID == transfer_syntax
        assert copy.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
        assert copy.file_meta.MediaStorageSOPClassUID == original.SOPClassUID
        assert copy.file_meta.SourceApplicationEntityTitle == "OXITESTORTHANC"
        assert_same_dataset(copy, original)
        # Stored as received: the data set bytes after the file meta are the sender's.
        assert _dataset_bytes(copy.filename) == _dataset_bytes(source)


def _dataset_bytes(path: str | Path) -> bytes:
    raw = Path(path).read_bytes()
    group_length = int.from_bytes(raw[140:144], "little")
    return raw[144 + group_length :]


def test_parallel_associations_store_everything(
    receiver: RunningReceiver, sample_data: Path
) -> None:
    sources = sorted((sample_data / "SAG-anon").glob("*.dcm"))
    shares = [sources[i::4] for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda share: storescu(receiver, *share), shares))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    stored = {str(p.relative_to(receiver.files_root)) for p in receiver.stored_files()}
    assert stored == {expected_path(s, SAG_SERIES) for s in sources}


def test_public_series_land_at_contract_paths(receiver: RunningReceiver, sample_data: Path) -> None:
    result = storescu(
        receiver,
        "+sd",
        "+r",
        "+sp",
        "*.dcm",
        sample_data / "SAG-anon",
        sample_data / "example-dicom-structural",
    )
    assert result.returncode == 0, result.stderr
    expected = {expected_path(s, SAG_SERIES) for s in (sample_data / "SAG-anon").glob("*.dcm")} | {
        expected_path(s, STRUCTURAL_SERIES)
        for s in (sample_data / "example-dicom-structural").rglob("*.dcm")
    }
    stored = {str(p.relative_to(receiver.files_root)) for p in receiver.stored_files()}
    assert len(expected) == 576
    assert stored == expected
    receiver.wait_for_log(r"series finished: 192 file\(s\) of 1\.3\.12\.2\.1107")
    receiver.wait_for_log(r"series finished: 384 file\(s\) of 1\.2\.826\.0\.1\.3680043")


def test_garbage_gets_one_abort_and_others_are_served(receiver: RunningReceiver) -> None:
    require_tool(ECHOSCU)
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n")
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    # One A-ABORT PDU (type 07, length 4), then the receiver closed the connection.
    assert received[:6] == b"\x07\x00\x00\x00\x00\x04"
    assert len(received) == 10
    result = echoscu(receiver.port)
    assert result.returncode == 0, result.stderr
