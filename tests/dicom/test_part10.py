"""The Part-10 header: pydicom reads meta + received data set as the original file."""

import io
import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian

from oxidicom.dicom.errors import DatasetError
from oxidicom.dicom.part10 import file_meta
from oxidicom.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from tests.sample_data import require_sample_data

DATA = require_sample_data()
SAMPLES = [
    sorted((DATA / "SAG-anon").glob("*.dcm"))[0],
    sorted((DATA / "example-dicom-structural" / "dicoms").glob("*.dcm"))[0],
]


def data_set_of(raw: bytes) -> bytes:
    (group_length,) = struct.unpack_from("<L", raw, 140)
    return raw[144 + group_length :]


def walk_meta(meta: bytes) -> list[tuple[int, bytes, bytes]]:
    """(element, VR, value) of each group-0002 element, checking explicit VR LE framing."""
    out = []
    pos = 132
    while pos < len(meta):
        group, elem, vr = struct.unpack_from("<HH2s", meta, pos)
        assert group == 0x0002
        if vr == b"OB":
            (length,) = struct.unpack_from("<L", meta, pos + 8)
            assert meta[pos + 6 : pos + 8] == b"\x00\x00"
            value = meta[pos + 12 : pos + 12 + length]
            pos += 12 + length
        else:
            (length,) = struct.unpack_from("<H", meta, pos + 6)
            value = meta[pos + 8 : pos + 8 + length]
            pos += 8 + length
        assert length % 2 == 0
        out.append((elem, vr, value))
    assert pos == len(meta)
    return out


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.parent.name)
def test_real_files_read_back_equal(path: Path) -> None:
    original = pydicom.dcmread(path)
    ts = str(original.file_meta.TransferSyntaxUID)
    meta = file_meta(original.SOPClassUID, original.SOPInstanceUID, ts, "OXITESTORTHANC")
    rebuilt = pydicom.dcmread(io.BytesIO(meta + data_set_of(path.read_bytes())))
    assert rebuilt == original
    fm = rebuilt.file_meta
    assert fm.FileMetaInformationVersion == b"\x00\x01"
    assert fm.MediaStorageSOPClassUID == original.SOPClassUID
    assert fm.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert fm.TransferSyntaxUID == ts
    assert fm.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert fm.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert fm.SourceApplicationEntityTitle == "OXITESTORTHANC"
    assert rebuilt.PixelData == original.PixelData


def test_layout_and_group_length() -> None:
    meta = file_meta("1.2.840.10008.5.1.4.1.1.4", "1.2.345", "1.2.840.10008.1.2.1", "AE1")
    assert meta[:128] == bytes(128)
    assert meta[128:132] == b"DICM"
    elements = walk_meta(meta)
    assert [e for e, _vr, _v in elements] == [
        0x0000,
        0x0001,
        0x0002,
        0x0003,
        0x0010,
        0x0012,
        0x0013,
        0x0016,
    ]
    assert elements[0][1] == b"UL"
    (group_length,) = struct.unpack("<L", elements[0][2])
    assert group_length == len(meta) - 132 - 12
    values = {e: v for e, _vr, v in elements}
    assert values[0x0001] == b"\x00\x01"
    assert values[0x0002] == b"1.2.840.10008.5.1.4.1.1.4\x00"  # odd UI: NUL-padded
    assert values[0x0003] == b"1.2.345\x00"
    assert values[0x0010] == b"1.2.840.10008.1.2.1\x00"
    assert values[0x0013] == IMPLEMENTATION_VERSION_NAME.encode()
    assert values[0x0016] == b"AE1 "  # odd AE: space-padded
    vrs = {e: vr for e, vr, _v in elements}
    assert vrs == {
        0: b"UL",
        1: b"OB",
        2: b"UI",
        3: b"UI",
        0x10: b"UI",
        0x12: b"UI",
        0x13: b"SH",
        0x16: b"AE",
    }


@pytest.mark.parametrize("ae", ["", "   ", "\x00\x00"])
def test_empty_source_ae_is_omitted(ae: str) -> None:
    meta = file_meta("1.2", "1.2.3", "1.2.840.10008.1.2", ae)
    assert 0x0016 not in [e for e, _vr, _v in walk_meta(meta)]
    ds = pydicom.dcmread(io.BytesIO(meta + b"\x08\x00\x18\x00\x04\x00\x00\x001.23"))
    assert "SourceApplicationEntityTitle" not in ds.file_meta
    assert ds.SOPInstanceUID == "1.23"


@pytest.mark.parametrize("ts", [ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian])
def test_other_transfer_syntaxes(ts: str) -> None:
    original = pydicom.dcmread(SAMPLES[1])
    del original.PixelData
    original.file_meta.TransferSyntaxUID = ts
    out = io.BytesIO()
    pydicom.dcmwrite(out, original, enforce_file_format=True)
    data = data_set_of(out.getvalue())
    meta = file_meta(original.SOPClassUID, original.SOPInstanceUID, ts, "X")
    rebuilt = pydicom.dcmread(io.BytesIO(meta + data))
    assert rebuilt.file_meta.TransferSyntaxUID == ts
    assert rebuilt == pydicom.dcmread(io.BytesIO(out.getvalue()))


def test_same_input_same_bytes_and_distinct_instances() -> None:
    a = file_meta("1.2", "1.2.3", "1.2.840.10008.1.2", "AE")
    assert file_meta("1.2", "1.2.3", "1.2.840.10008.1.2", "AE") == a
    assert file_meta("1.2", "1.2.34", "1.2.840.10008.1.2", "AE") != a


def test_uid_too_long_for_a_short_length() -> None:
    with pytest.raises(DatasetError) as info:
        file_meta("1.2", "1." * 40000, "1.2.840.10008.1.2", "AE")
    assert info.value.status == 0xC001
    assert "SOPInstanceUID" in info.value.comment


@pytest.mark.parametrize("ae", ["AE1", ""])
def test_every_uid_length_gets_its_own_group_length(ae: str) -> None:
    # The header is built from a template per (class, syntax, AE, UID length): each
    # length, odd or even, in any order, must give its own correct group length.
    for size in (*range(64, 0, -1), *range(1, 65)):
        uid = ("1." + "2" * 64)[:size]
        meta = file_meta("1.2.840.10008.5.1.4.1.1.4", uid, "1.2.840.10008.1.2.1", ae)
        elements = walk_meta(meta)
        (group_length,) = struct.unpack("<L", elements[0][2])
        assert group_length == len(meta) - 132 - 12
        values = {e: v for e, _vr, v in elements}
        assert values[0x0003] == uid.encode() + b"\x00" * (size & 1)
