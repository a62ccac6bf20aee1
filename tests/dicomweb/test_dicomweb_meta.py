"""The Part-10 header of a STOW-RS part, read as it streams (oxidicom/dicomweb/meta.py)."""

from __future__ import annotations

import struct

import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, MRImageStorage

from oxidicom.dicomweb.meta import MAX_META_LENGTH, FileMeta, MetaError, MetaReader
from tests.dicom_factory import mr_instance
from tests.dicomweb_helpers import part10


def feed_all(data: bytes, step: int) -> tuple[FileMeta, bytes]:
    """Feed ``data`` ``step`` bytes at a time; the meta and every data set byte after it."""
    reader = MetaReader()
    for start in range(0, len(data), step):
        found = reader.feed(data[start : start + step])
        if found is not None:
            meta, rest = found
            return meta, bytes(rest) + data[start + step :]
    reader.finish()
    raise AssertionError("finish() should have raised")


def data_set_offset(data: bytes) -> int:
    (group_length,) = struct.unpack_from("<L", data, 132 + 8)
    return 132 + 12 + group_length


@pytest.mark.parametrize("step", [1, 7, 131, 132, 133, 4096, 1 << 20])
def test_meta_and_the_exact_data_set_bytes_however_the_part_is_split(step: int) -> None:
    ds = mr_instance()
    data = part10(ds)
    meta, rest = feed_all(data, step)
    assert meta == FileMeta(MRImageStorage, ds.SOPInstanceUID, ExplicitVRLittleEndian)
    assert rest == data[data_set_offset(data) :]


def test_deflated_transfer_syntax_is_named_and_its_bytes_left_alone() -> None:
    ds = mr_instance()
    data = part10(ds, DeflatedExplicitVRLittleEndian)
    meta, rest = feed_all(data, 100)
    assert meta.transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    assert rest == data[data_set_offset(data) :]


def test_meta_without_group_length_is_walked_to_its_end() -> None:
    data = part10(mr_instance())
    offset = data_set_offset(data)
    # Drop (0002,0000) UL (12 bytes): the walk must find the same end.
    stripped = data[:132] + data[132 + 12 :]
    meta, rest = feed_all(stripped, 50)
    assert rest == data[offset:]
    assert meta.transfer_syntax_uid == ExplicitVRLittleEndian


def test_a_data_set_without_preamble_is_not_part10() -> None:
    data = part10(mr_instance())
    with pytest.raises(MetaError, match="not a DICOM Part-10 file") as caught:
        feed_all(data[data_set_offset(data) :], 4096)
    assert caught.value.status == 0xC000


def test_a_short_part_is_not_part10() -> None:
    with pytest.raises(MetaError, match="not a DICOM Part-10 file"):
        feed_all(b"hello", 4096)


def test_meta_without_transfer_syntax_fails() -> None:
    data = part10(mr_instance())
    # Rename (0002,0010) to (0002,0011): the element is still walked, no longer kept.
    marker = struct.pack("<HH", 0x0002, 0x0010) + b"UI"
    at = data.index(marker, 132)
    broken = data[:at] + struct.pack("<HH", 0x0002, 0x0011) + data[at + 4 :]
    with pytest.raises(MetaError, match=r"TransferSyntaxUID \(0002,0010\)"):
        feed_all(broken, 4096)


def test_a_part_that_ends_inside_the_meta_fails_at_finish() -> None:
    data = part10(mr_instance())
    reader = MetaReader()
    assert reader.feed(data[:150]) is None
    with pytest.raises(MetaError, match="ends inside the file meta"):
        reader.finish()


def test_meta_that_never_ends_is_refused_at_the_limit() -> None:
    head = bytes(128) + b"DICM"
    # One private group-0002 element of 60 000 bytes, over and over: never a data set.
    element = struct.pack("<HH2sHL", 0x0002, 0x0100, b"OB", 0, 60_000) + bytes(60_000)
    reader = MetaReader()
    with pytest.raises(MetaError):
        reader.feed(head)
        for _ in range(MAX_META_LENGTH // 60_000 + 2):
            reader.feed(element)


def test_an_undefined_length_in_the_meta_is_refused() -> None:
    head = bytes(128) + b"DICM" + struct.pack("<HH2sHL", 0x0002, 0x0001, b"OB", 0, 0xFFFFFFFF)
    with pytest.raises(MetaError, match="bad length"):
        MetaReader().feed(head + bytes(64))
