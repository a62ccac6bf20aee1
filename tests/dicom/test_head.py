"""The incremental data-set head parser, against pydicom and against hostile bytes."""

import hashlib
import io
import random
import struct
import sys
import tracemalloc
import zlib
from pathlib import Path
from unittest.mock import patch

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from oxidicom.dicom import head as head_module
from oxidicom.dicom.errors import DatasetError
from oxidicom.dicom.head import (
    INFLATE_INPUT_STEP,
    INFLATE_STEP,
    MAX_DECODED_BYTES,
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_INFLATED,
    MAX_VALUE_LENGTH,
    HeadFields,
    HeadParserPy,
)
from oxidicom.storage.layout import check_required, instance_file_name, series_dir
from tests.dicom.head_twins import HeadTwin, head_twin
from tests.implementations import IMPLEMENTATIONS
from tests.sample_data import require_sample_data

DATA = require_sample_data()
SAG = sorted((DATA / "SAG-anon").glob("*.dcm"))
STRUCTURAL = sorted((DATA / "example-dicom-structural" / "dicoms").glob("*.dcm"))
ALL_FILES = SAG + STRUCTURAL

ENCODINGS = [
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
]

# HeadFields field -> (tag, charset-dependent)
FIELDS: dict[str, tuple[int, bool]] = {
    "sop_class_uid": (0x00080016, False),
    "sop_instance_uid": (0x00080018, False),
    "study_date": (0x00080020, False),
    "accession_number": (0x00080050, True),
    "modality": (0x00080060, False),
    "study_description": (0x00081030, True),
    "series_description": (0x0008103E, True),
    "patient_name": (0x00100010, True),
    "patient_id": (0x00100020, True),
    "patient_birth_date": (0x00100030, False),
    "patient_sex": (0x00100040, False),
    "patient_age": (0x00101010, False),
    "protocol_name": (0x00181030, True),
    "study_instance_uid": (0x0020000D, False),
    "series_instance_uid": (0x0020000E, False),
    "series_number": (0x00200011, False),
    "instance_number": (0x00200013, False),
}


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def twin(request: pytest.FixtureRequest) -> HeadTwin:
    """Every test of the parser runs on both: the pure-Python reference and the compiled
    walk (module-scoped, so that hypothesis may use it)."""
    return head_twin(request.param)


def split_part10(raw: bytes) -> tuple[str, bytes]:
    """(TransferSyntaxUID, data set bytes) of a Part-10 file, via the group length."""
    assert raw[128:132] == b"DICM"
    tag, vr, _len, group_length = struct.unpack_from("<L2sHL", raw, 132)
    assert (tag, vr) == (0x00000002, b"UL")
    start = 144 + group_length
    meta = pydicom.dcmread(io.BytesIO(raw[:start])).file_meta
    return str(meta.TransferSyntaxUID), raw[start:]


def encode(ds: Dataset, transfer_syntax: str) -> bytes:
    """The data set bytes of ``ds`` in ``transfer_syntax``, as pydicom writes them."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return split_part10(out.getvalue())[1]


def expected(ds: Dataset) -> HeadFields:
    """What pydicom reads, as HeadFields (surrounding spaces and NUL removed)."""
    values: dict[str, str | None] = {}
    for name, (tag, charset) in FIELDS.items():
        if tag not in ds:
            values[name] = None
            continue
        if charset:
            value = ds[tag].value
            if isinstance(value, MultiValue):
                text = "\\".join(str(v) for v in value)
            else:
                text = "" if value is None else str(value)
        else:
            raw = ds.get_item(tag).value
            if isinstance(raw, bytes):
                text = raw.decode("latin-1")
            else:
                value = ds[tag].value
                text = (
                    "\\".join(str(v) for v in value)
                    if isinstance(value, MultiValue)
                    else ("" if value is None else str(value))
                )
        values[name] = text.strip(" \x00")
    if 0x00080005 in ds:
        value = ds.SpecificCharacterSet
        terms = tuple(value) if isinstance(value, MultiValue) else (value or "",)
        charset = tuple(t.strip() for t in terms)
    else:
        charset = ()
    return HeadFields(specific_character_set=charset, **values)


def feed_chunks(twin: HeadTwin, transfer_syntax: str, data: bytes, sizes: list[int]) -> HeadFields:
    parser = twin.HeadParser(transfer_syntax)
    pos = 0
    i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        i += 1
        if parser.feed(memoryview(data)[pos : pos + n]):
            break
        pos += n
    return parser.finish()


def outcome(fn, *args):
    try:
        return fn(*args)
    except DatasetError as exc:
        return ("error", exc.status)


# -- real data --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_files() -> list[tuple[Path, str, bytes, HeadFields]]:
    out = []
    for path in ALL_FILES:
        raw = path.read_bytes()
        ts, data = split_part10(raw)
        ds = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True)
        out.append((path, ts, data, expected(ds)))
    return out


def test_sample_data_present() -> None:
    assert len(SAG) == 192
    assert len(STRUCTURAL) == 384


def test_real_files_whole(twin: HeadTwin, real_files) -> None:
    for path, ts, data, want in real_files:
        assert twin.parse_head(ts, data) == want, path


def test_real_files_expected_values(twin: HeadTwin, real_files) -> None:
    sag = twin.parse_head(real_files[0][1], real_files[0][2])
    assert sag.patient_id == "1449c1d"
    assert sag.study_description == "MR-Brain w/o Contrast"
    assert sag.series_number == "5"
    assert sag.specific_character_set == ()
    structural = twin.parse_head(real_files[-1][1], real_files[-1][2])
    assert structural.accession_number == ""  # present but empty
    assert structural.patient_age == "42"
    assert structural.series_number == "401"
    assert structural.study_description == "Hanke_Stadler^0024_transrep"


def test_real_files_random_chunks(twin: HeadTwin, real_files) -> None:
    rng = random.Random(1234)
    for path, ts, data, want in real_files:
        sizes = [rng.choice([1, 2, 3, 7, 13, 100, 1000, 4096, 16378]) for _ in range(64)]
        assert feed_chunks(twin, ts, data, sizes) == want, path


@pytest.mark.parametrize("index", [0, -1])
def test_real_files_one_byte_at_a_time(twin: HeadTwin, real_files, index: int) -> None:
    _path, ts, data, want = real_files[index]
    assert feed_chunks(twin, ts, data, [1]) == want


def test_real_files_with_trailing_bytes(twin: HeadTwin, real_files) -> None:
    for _path, ts, data, want in (real_files[0], real_files[-1]):
        parser = twin.HeadParser(ts)
        assert parser.feed(data + b"\xff" * 1000)
        assert parser.feed(b"more bytes after done")
        assert parser.done
        assert parser.finish() == want
        assert parser.finish() == want  # idempotent


def test_real_head_only_needs_the_head(twin: HeadTwin, real_files) -> None:
    """Done is reached long before the pixel data; the rest is never looked at."""
    _path, ts, data, want = real_files[0]
    parser = twin.HeadParser(ts)
    fed = 0
    while not parser.feed(data[fed : fed + 512]):
        fed += 512
    assert fed < 16384
    assert parser.finish() == want


# -- synthetic data sets ----------------------------------------------------------------


def base_dataset() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = "1.2.3.4.5.6.7"
    ds.StudyDate = "20240229"
    ds.AccessionNumber = "ACC 1"
    ds.Modality = "MR"
    ds.StudyDescription = "Brain w/o"
    ds.SeriesDescription = "T1 sag"
    ds.PatientName = "Doe^John"
    ds.PatientID = "PID-1"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.PatientAge = "054Y"
    ds.ProtocolName = "proto"
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = "1.2.3.4"
    ds.SeriesNumber = "12"
    ds.InstanceNumber = "7"
    ds.StudyID = "after"  # (0020,0010), between the wanted tags
    ds.Rows = 4  # (0028,0010): after (0020,0013)
    ds.BitsAllocated = 8
    ds.add_new(0x7FE00010, "OB", b"\x00" * 32)
    return ds


@pytest.mark.parametrize("ts", ENCODINGS)
def test_synthetic_all_encodings(twin: HeadTwin, ts: str) -> None:
    ds = base_dataset()
    data = encode(ds, ts)
    want = expected(ds)
    assert twin.parse_head(ts, data) == want
    assert feed_chunks(twin, ts, data, [1]) == want
    assert feed_chunks(twin, ts, data, [3, 5, 11]) == want


CHARSET_CASES = [
    ("ISO_IR 100", "Müller^Jürgen", "Études cérébrales"),
    (["", "ISO 2022 IR 87"], "Yamada^Tarou=山田^太郎=やまだ^たろう", "頭部 MRI"),
    ("ISO_IR 192", "Wang^XiaoDong=王^小東=", "Люксембург 脳"),
    ("ISO_IR 144", "\u041b\u044e\u043a\u0441\u0435\u043c\u0431\u0443\u0440\u0433", "Обследование"),
    (["", "ISO 2022 IR 149"], "Hong^Gildong=洪^吉洞=홍^길동", "뇌"),
]


@pytest.mark.parametrize("ts", ENCODINGS)
@pytest.mark.parametrize(("charset", "name", "description"), CHARSET_CASES)
def test_synthetic_charsets(twin: HeadTwin, ts: str, charset, name: str, description: str) -> None:
    ds = base_dataset()
    ds.SpecificCharacterSet = charset
    ds.PatientName = name
    ds.StudyDescription = description
    ds.SeriesDescription = description + "\\second"  # multi-valued raw string kept
    data = encode(ds, ts)
    got = twin.parse_head(ts, data)
    back = pydicom.dcmread(io.BytesIO(b"\x00" * 128 + b"DICM" + meta_for(ts) + data))
    want = expected(back)
    assert got == want
    assert got.patient_name == name.rstrip("=")
    assert got.study_description == description
    assert got.series_description == description + "\\second"
    assert feed_chunks(twin, ts, data, [1, 2]) == want


def meta_for(ts: str) -> bytes:
    from oxidicom.dicom.part10 import file_meta

    return file_meta("1.2.840.10008.5.1.4.1.1.4", "1.2.3.4", ts, "TEST")[132:]


def test_default_repertoire_non_ascii_bytes_match_pydicom(twin: HeadTwin) -> None:
    """No SpecificCharacterSet: pydicom decodes as iso8859 (Latin-1); so do we."""
    ds = base_dataset()
    data = encode(ds, ExplicitVRLittleEndian)
    data = data.replace(b"Doe^John", b"D\xf6e^J\xf6hn")  # same lengths
    data = data.replace(b"PID-1 ", b"P\xff\x80-1 ")
    got = twin.parse_head(ExplicitVRLittleEndian, data)
    back = pydicom.dcmread(
        io.BytesIO(b"\x00" * 128 + b"DICM" + meta_for(ExplicitVRLittleEndian) + data)
    )
    assert got == expected(back)
    assert got.patient_name == "Döe^Jöhn"
    assert got.patient_id == "P\xff\x80-1"


def test_empty_and_absent_values(twin: HeadTwin) -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = ""
    ds.SOPInstanceUID = "1.2"
    ds.AccessionNumber = ""
    ds.PatientName = "  padded  "
    data = encode(ds, ImplicitVRLittleEndian)
    got = twin.parse_head(ImplicitVRLittleEndian, data)
    assert got.specific_character_set == ("",)
    assert got.accession_number == ""
    assert got.study_date is None
    assert got.patient_name == "padded"
    assert got.sop_instance_uid == "1.2"


def test_values_keep_backslashes_and_strip_nul(twin: HeadTwin) -> None:
    ds = base_dataset()
    data = encode(ds, ExplicitVRLittleEndian)
    # "1.2.3.4" UI (odd length, NUL-padded to 8): the NUL is removed
    assert twin.parse_head(ExplicitVRLittleEndian, data).series_instance_uid == "1.2.3.4"
    ds.SeriesNumber = ["1", "2"]
    data = encode(ds, ExplicitVRLittleEndian)
    assert twin.parse_head(ExplicitVRLittleEndian, data).series_number == "1\\2"


def nested_sequence(depth: int, undefined: bool) -> Sequence:
    item = Dataset()
    item.CodeValue = "C"
    item.CodingSchemeDesignator = "DCM"
    item.PatientName = "NOT^ME"  # a wanted tag inside an item must be ignored
    if depth > 0:
        item.ContentSequence = nested_sequence(depth - 1, undefined)
        item["ContentSequence"].is_undefined_length = undefined
    item.is_undefined_length_sequence_item = undefined
    second = Dataset()
    second.CodeValue = "D"
    second.is_undefined_length_sequence_item = undefined
    return Sequence([item, second])


@pytest.mark.parametrize("ts", ENCODINGS)
@pytest.mark.parametrize("undefined", [True, False])
def test_nested_sequences_before_wanted_tags(twin: HeadTwin, ts: str, undefined: bool) -> None:
    ds = base_dataset()
    ds.LanguageCodeSequence = nested_sequence(5, undefined)  # (0008,0006)
    ds["LanguageCodeSequence"].is_undefined_length = undefined
    ds.ReferencedImageSequence = nested_sequence(2, undefined)  # (0008,1140)
    ds["ReferencedImageSequence"].is_undefined_length = undefined
    data = encode(ds, ts)
    if undefined and ts != DeflatedExplicitVRLittleEndian:
        delimiter = b"\xfe\xff\xdd\xe0" if ts != ExplicitVRBigEndian else b"\xff\xfe\xe0\xdd"
        assert delimiter in data
    want = expected(ds)
    assert want.patient_name == "Doe^John"
    assert twin.parse_head(ts, data) == want
    assert feed_chunks(twin, ts, data, [1]) == want
    assert feed_chunks(twin, ts, data, [2, 9, 4]) == want


def le_implicit(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value


def le_explicit(tag: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


ITEM = b"\xfe\xff\x00\xe0"
ITEM_DELIM = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
SEQ_DELIM = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
UNDEF = b"\xff\xff\xff\xff"


def un_undefined_element() -> bytes:
    """(0009,1010) UN of undefined length: a sequence in implicit VR LE (PS3.5 6.2.2)."""
    inner_seq = (
        b"\x08\x00\x06\x00"
        + UNDEF  # implicit SQ of undefined length
        + ITEM
        + UNDEF
        + le_implicit(0x00080100, b"ABCD")
        + ITEM_DELIM
        + SEQ_DELIM
    )
    content = (
        ITEM
        + UNDEF
        + le_implicit(0x00100010, b"\x10\x00" * 8)  # would misparse as explicit
        + inner_seq
        + ITEM_DELIM
        + ITEM
        + struct.pack("<L", 12)
        + le_implicit(0x00080100, b"WXYZ")
        + SEQ_DELIM
    )
    return b"\x09\x00\x10\x10UN\x00\x00" + UNDEF + content


def split_dataset(ds: Dataset, before: int, ts: str) -> tuple[bytes, bytes]:
    """Encode the elements of ``ds`` with tags < ``before`` and >= ``before`` separately."""
    low, high = Dataset(), Dataset()
    for elem in ds:
        (low if elem.tag < before else high).add(elem)
    if "SpecificCharacterSet" in ds:
        high.SpecificCharacterSet = ds.SpecificCharacterSet
    low_bytes = encode(low, ts)
    high_bytes = encode(high, ts)
    if "SpecificCharacterSet" in ds:  # drop the copy at the head of the high part
        low_bytes_len = len(encode(Dataset({0x00080005: ds["SpecificCharacterSet"]}), ts))
        high_bytes = high_bytes[low_bytes_len:]
    return low_bytes, high_bytes


def test_un_of_undefined_length_before_wanted_tags(twin: HeadTwin) -> None:
    ds = base_dataset()
    low, high = split_dataset(ds, 0x00100000, ExplicitVRLittleEndian)
    data = low + un_undefined_element() + high
    want = expected(ds)
    assert twin.parse_head(ExplicitVRLittleEndian, data) == want
    assert feed_chunks(twin, ExplicitVRLittleEndian, data, [1]) == want
    assert feed_chunks(twin, ExplicitVRLittleEndian, data, [5, 3]) == want


def test_encapsulated_style_undefined_ob_is_skipped(twin: HeadTwin) -> None:
    """Undefined-length OB with defined-length items then a sequence delimiter (A.4)."""
    ds = base_dataset()
    low, high = split_dataset(ds, 0x00100000, ExplicitVRLittleEndian)
    ob = (
        b"\x09\x00\x20\x10OB\x00\x00"
        + UNDEF
        + ITEM
        + struct.pack("<L", 0)
        + ITEM
        + struct.pack("<L", 6)
        + b"\xfe\xff\xdd\xe0\x00\x00"
        + SEQ_DELIM
    )
    assert twin.parse_head(ExplicitVRLittleEndian, low + ob + high) == expected(ds)


class _Zeros:
    """Feed ``n`` zero bytes in reused 64 KiB chunks without ever holding them all."""

    chunk = bytes(65536)

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        left = self.n
        while left:
            k = min(left, len(self.chunk))
            yield memoryview(self.chunk)[:k]
            left -= k


HUGE = 50_000_000


def huge_private_pieces(ts: str, size: int = HUGE):
    ds = base_dataset()
    low, high = split_dataset(ds, 0x00100000, ts)
    if ts == ImplicitVRLittleEndian:
        creator = le_implicit(0x00090010, b"OXI ")
        header = struct.pack("<HHL", 0x0009, 0x1001, size)
    else:
        creator = le_explicit(0x00090010, b"LO", b"OXI ")
        header = b"\x09\x00\x01\x10OB\x00\x00" + struct.pack("<L", size)
    return ds, [low, creator, header], _Zeros(size), [high]


@pytest.mark.parametrize("ts", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_huge_private_element_is_skipped_not_buffered(twin: HeadTwin, ts: str) -> None:
    ds, before, zeros, after = huge_private_pieces(ts)
    parser = twin.HeadParser(ts)
    max_buf = 0
    tracemalloc.start()
    try:
        for piece in before:
            parser.feed(piece)
            max_buf = max(max_buf, len(parser._buf))
        for piece in zeros:
            assert not parser.feed(piece)
            max_buf = max(max_buf, len(parser._buf))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for piece in after:
        parser.feed(piece)
    assert max_buf <= 12
    assert peak < 256 * 1024
    assert parser.finish() == expected(ds)


def test_huge_private_element_deflated(twin: HeadTwin) -> None:
    """As large as the inflated bytes before (0020,0013) may be (MAX_INFLATED)."""
    ts = DeflatedExplicitVRLittleEndian
    size = MAX_INFLATED - 4096
    ds, before, zeros, after = huge_private_pieces(ExplicitVRLittleEndian, size)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    parser = twin.HeadParser(ts)
    max_buf = 0
    tracemalloc.start()
    try:
        for piece in [*before, *zeros]:
            out = compressor.compress(piece)
            if out:
                parser.feed(out)
                max_buf = max(max_buf, len(parser._buf))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tail = b"".join(compressor.compress(p) for p in after) + compressor.flush()
    assert parser.feed(tail)
    assert max_buf <= 12
    assert peak < 1024 * 1024
    assert parser.finish() == expected(ds)


def test_deflate_bomb_of_tiny_elements_is_refused(twin: HeadTwin) -> None:
    # 8 zero bytes = one (0000,0000) element of length 0, forever
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(bytes(8 * 1_000_000)) + bomb.flush()
    assert len(data) < 20_000
    parser = twin.HeadParser(DeflatedExplicitVRLittleEndian)
    assert parser.feed(data)
    with pytest.raises(DatasetError) as info:
        parser.finish()
    assert info.value.status == 0xC000
    assert "elements" in info.value.comment


# -- cost: the walk to (0020,0013) is capped, not timed ---------------------------------
#
# What one head may cost on the event loop is bounded by MAX_ELEMENTS elements walked and
# MAX_INFLATED bytes inflated; these tests count the work (elements, bytes, calls), the
# times are in benches/head_walk_cost.py.


def empty_elements(ts: str, n: int, vr: bytes = b"LO") -> bytes:
    """``n`` empty private elements (0009,1001); the walk reads them in any order."""
    if ts == ImplicitVRLittleEndian:
        return struct.pack("<HHL", 0x0009, 0x1001, 0) * n
    order = ">" if ts == ExplicitVRBigEndian else "<"
    if vr in (b"OB", b"SQ", b"UN"):
        return struct.pack(order + "HH2sHL", 0x0009, 0x1001, vr, 0, 0) * n
    return struct.pack(order + "HH2sH", 0x0009, 0x1001, vr, 0) * n


def in_an_item(ts: str, content: bytes) -> bytes:
    """``content`` in one item of a sequence, both of undefined length: 4 more units."""
    order = ">" if ts == ExplicitVRBigEndian else "<"
    if ts == ImplicitVRLittleEndian:
        sq = struct.pack("<HHL", 0x0009, 0x1000, 0xFFFFFFFF)
    else:
        sq = struct.pack(order + "HH2sHL", 0x0009, 0x1000, b"SQ", 0, 0xFFFFFFFF)
    return (
        sq
        + struct.pack(order + "HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
        + content
        + struct.pack(order + "HHL", 0xFFFE, 0xE00D, 0)
        + struct.pack(order + "HHL", 0xFFFE, 0xE0DD, 0)
    )


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def with_filler(ts: str, filler: bytes) -> tuple[bytes, HeadFields, int]:
    """base_dataset() with ``filler`` (private group 0009) inserted: (bytes to send in
    ``ts``, the fields, the elements the walk counts without the filler)."""
    plain_ts = ExplicitVRLittleEndian if ts == DeflatedExplicitVRLittleEndian else ts
    ds = base_dataset()
    low, high = split_dataset(ds, 0x00090000, plain_ts)
    parser = HeadParserPy(plain_ts)  # the count is the same in both (the tests say so)
    parser.feed(low + high)
    parser.finish()
    data = low + filler + high
    return (deflated(data) if plain_ts != ts else data), expected(ds), parser._count


@pytest.mark.parametrize("nested", [False, True], ids=["top-level", "in-an-item"])
@pytest.mark.parametrize("ts", ENCODINGS)
def test_a_head_of_max_elements_is_stored_one_more_is_refused(
    twin: HeadTwin, ts: str, nested: bool
) -> None:
    """Exactly at the cap, whatever the fragments; one element more is C000."""

    def data(extra: int) -> tuple[bytes, HeadFields]:
        _data, _fields, base = with_filler(ts, b"")
        n = MAX_ELEMENTS - base - (4 if nested else 0) + extra
        filler = empty_elements(ts, n)
        data, fields, _base = with_filler(ts, in_an_item(ts, filler) if nested else filler)
        return data, fields

    at_cap, fields = data(0)
    over_cap, _fields = data(1)
    for sizes in ([len(at_cap)], [16384], [7, 1000, 13]):
        assert feed_chunks(twin, ts, at_cap, sizes) == fields
        with pytest.raises(DatasetError) as info:
            feed_chunks(twin, ts, over_cap, sizes)
        assert info.value.status == 0xC000
        assert info.value.comment == (
            f"head over limit: more than {MAX_ELEMENTS} elements before (0020,0013)"
        )


@pytest.mark.parametrize(
    ("nested", "vr"), [(False, b"LO"), (True, b"LO"), (True, b"OB")], ids=["top", "item", "ob"]
)
@pytest.mark.parametrize("ts", ENCODINGS)
def test_a_fragment_of_many_elements_stops_at_the_cap(
    twin: HeadTwin, ts: str, nested: bool, vr: bytes
) -> None:
    """The cap holds inside one fragment: on main a 16 MiB fragment walked 2 million."""
    filler = empty_elements(ts, 4 * MAX_ELEMENTS, vr)
    data, _fields, _base = with_filler(ts, in_an_item(ts, filler) if nested else filler)
    parser = twin.HeadParser(ts)
    assert parser.feed(data)
    assert parser._count <= MAX_ELEMENTS + 2
    with pytest.raises(DatasetError) as info:
        parser.finish()
    assert info.value.status == 0xC000
    assert "elements" in info.value.comment


@pytest.mark.parametrize("ts", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_a_value_skipped_near_the_cap_is_skipped_in_one_span(
    twin: HeadTwin, ts: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Near the cap the walk goes in short spans; a long value is still skipped by count,
    not 8 bytes at a time."""
    _data, _fields, base = with_filler(ts, b"")
    size = 4 * 1024 * 1024
    if ts == ImplicitVRLittleEndian:
        big = struct.pack("<HHL", 0x0009, 0x1002, size) + bytes(size)
    else:
        big = struct.pack("<HH2sHL", 0x0009, 0x1002, b"OB", 0, size) + bytes(size)
    filler = empty_elements(ts, MAX_ELEMENTS - base - 3) + big
    data, fields, _base = with_filler(ts, filler)
    walks = 0
    feed_plain = twin.HeadParser._feed_plain

    def counted(self: HeadParserPy, data: bytes | bytearray | memoryview) -> None:
        nonlocal walks
        walks += 1
        feed_plain(self, data)

    monkeypatch.setattr(twin.HeadParser, "_feed_plain", counted)
    assert twin.parse_head(ts, data) == fields
    assert walks <= 4


def bomb(size: int) -> bytes:
    """A deflated head whose private value of ``size`` zeros comes before (0020,0013)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    ds = base_dataset()
    low, high = split_dataset(ds, 0x00090000, ExplicitVRLittleEndian)
    out = [compressor.compress(low + struct.pack("<HH2sHL", 0x0009, 0x1001, b"OB", 0, size))]
    block = bytes(1024 * 1024)
    for start in range(0, size, len(block)):
        out.append(compressor.compress(block[: size - start]))
    out.append(compressor.compress(high))
    out.append(compressor.flush())
    return b"".join(out)


def test_a_deflate_bomb_stops_at_the_inflated_cap(twin: HeadTwin) -> None:
    data = bomb(4 * MAX_INFLATED)
    assert len(data) < 4 * MAX_INFLATED // 1000
    parser = twin.HeadParser(DeflatedExplicitVRLittleEndian)
    assert parser.feed(data)
    assert parser._inflated <= MAX_INFLATED + INFLATE_STEP
    with pytest.raises(DatasetError) as info:
        parser.finish()
    assert info.value.status == 0xC000
    assert info.value.comment == (
        f"head over limit: more than {MAX_INFLATED >> 20} MiB inflated before (0020,0013)"
    )


class _RecordingInflater:
    """A zlib decompressor that records how many bytes each call is given."""

    def __init__(self) -> None:
        self._inner = zlib.decompressobj(-15)
        self.sizes: list[int] = []

    def decompress(self, data: bytes | memoryview, max_length: int = 0) -> bytes:
        self.sizes.append(len(data))
        return self._inner.decompress(data, max_length)

    @property
    def unconsumed_tail(self) -> bytes:
        return self._inner.unconsumed_tail

    @property
    def eof(self) -> bool:
        return self._inner.eof


@pytest.mark.parametrize("size", [MAX_INFLATED - 4096, 4 * MAX_INFLATED])
def test_the_inflater_is_given_a_bounded_input_at_a_time(twin: HeadTwin, size: int) -> None:
    """zlib copies the input a call leaves unused (``unconsumed_tail``): given a whole
    16 MiB fragment, once per 64 KiB inflated, it copied gigabytes (1.2 s for a 64 KiB
    bomb and a 15 MiB tail). Given at most INFLATE_INPUT_STEP bytes, it copies at most
    that per call, and makes one call per step of output or input."""
    compressed = bomb(size)
    data = compressed + bytes(4 * 1024 * 1024)  # never reached
    parser = twin.HeadParser(DeflatedExplicitVRLittleEndian)
    recorder = _RecordingInflater()
    parser._inflater = recorder  # type: ignore[assignment]
    parser.feed(data)
    assert max(recorder.sizes) <= INFLATE_INPUT_STEP
    steps = min(size, MAX_INFLATED) // INFLATE_STEP + len(compressed) // INFLATE_INPUT_STEP
    assert len(recorder.sizes) <= steps + 4
    assert parser.done


def test_real_heads_are_far_below_the_caps(twin: HeadTwin, real_files) -> None:
    for path, ts, data, _want in real_files:
        parser = twin.HeadParser(ts)
        assert parser.feed(data), path
        assert parser._count <= MAX_ELEMENTS // 50, path


def siemens_like() -> Dataset:
    """Vendor-shaped head: private (0019,10xx) before the path tags, 2 x 100 KB of
    (0029,xxxx) after them (where Siemens keeps its CSA headers), then pixels."""
    ds = base_dataset()
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    for offset in range(0x08, 0xFF):
        block.add_new(offset, "LO", f"value {offset}")
    csa = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    noise = random.Random(29)
    csa.add_new(0x10, "OB", noise.randbytes(100_000))
    csa.add_new(0x20, "OB", noise.randbytes(100_000))
    return ds


@pytest.mark.parametrize("ts", ENCODINGS)
def test_big_private_data_after_the_path_tags_is_not_walked(twin: HeadTwin, ts: str) -> None:
    ds = siemens_like()
    data = encode(ds, ts)
    assert len(data) > 200_000
    for sizes in ([len(data)], [16384], [1000, 7]):
        parser = twin.HeadParser(ts)
        for start in range(0, len(data), sizes[0]):
            if parser.feed(data[start : start + sizes[0]]):
                break
        assert parser.finish() == expected(ds)
        assert parser._count < 300
        assert parser._inflated <= INFLATE_STEP


@pytest.mark.parametrize("ts", ENCODINGS)
def test_undefined_length_references_to_2400_instances_are_stored(twin: HeadTwin, ts: str) -> None:
    """What MAX_ELEMENTS leaves to a real head at the worst: a derived image whose Source
    Image Sequence, before (0020,0013), has items of undefined length for 2 400 source
    instances (4 units each: item, (0008,1150), (0008,1155), delimiter)."""
    ds = base_dataset()
    items = []
    for i in range(2400):
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.2.1143.{i}"
        item.is_undefined_length_sequence_item = True
        items.append(item)
    ds.SourceImageSequence = Sequence(items)
    ds["SourceImageSequence"].is_undefined_length = True
    data = encode(ds, ts)
    parser = twin.HeadParser(ts)
    parser.feed(data)
    assert parser.finish() == expected(ds)
    assert 4 * 2400 < parser._count <= MAX_ELEMENTS


# -- errors -----------------------------------------------------------------------------


def test_truncated_inside_a_needed_element(twin: HeadTwin) -> None:
    data = encode(base_dataset(), ExplicitVRLittleEndian)
    cut = data.index(b"\x20\x00\x0e\x00") + 12  # inside SeriesInstanceUID's value
    parser = twin.HeadParser(ExplicitVRLittleEndian)
    assert not parser.feed(data[:cut])
    with pytest.raises(DatasetError) as info:
        parser.finish()
    assert info.value.status == 0xC000
    assert "ends inside" in info.value.comment
    with pytest.raises(DatasetError):  # and again
        parser.finish()


def test_truncated_inside_a_skipped_element(twin: HeadTwin) -> None:
    ds = base_dataset()
    data = encode(ds, ImplicitVRLittleEndian)
    cut = data.index(b"\x20\x00\x10\x00") + 9  # inside StudyID (0020,0010)
    with pytest.raises(DatasetError, match=r"\(0020,0010\)"):
        twin.parse_head(ImplicitVRLittleEndian, data[:cut])


def test_data_set_ending_at_an_element_boundary_is_fine(twin: HeadTwin) -> None:
    ds = Dataset()
    ds.SOPInstanceUID = "1.2"
    ds.StudyDate = "20200101"
    for ts in ENCODINGS:
        got = twin.parse_head(ts, encode(ds, ts))
        assert got.sop_instance_uid == "1.2"
        assert got.study_date == "20200101"
        assert got.patient_id is None
    assert twin.parse_head(ExplicitVRLittleEndian, b"") == HeadFields((), *[None] * 17)


def test_data_set_ending_inside_undefined_sequence(twin: HeadTwin) -> None:
    ds = base_dataset()
    ds.LanguageCodeSequence = nested_sequence(1, True)
    ds["LanguageCodeSequence"].is_undefined_length = True
    data = encode(ds, ImplicitVRLittleEndian)
    cut = data.index(b"\x08\x00\x16\x00")  # before SOPClassUID: still inside the sequence?
    seq_end = data.index(SEQ_DELIM)
    with pytest.raises(DatasetError, match="undefined length"):
        twin.parse_head(ImplicitVRLittleEndian, data[: min(cut, seq_end)])


def test_kept_value_too_long(twin: HeadTwin) -> None:
    data = le_implicit(0x00100010, b"A" * (MAX_VALUE_LENGTH + 2))
    with pytest.raises(DatasetError, match="bytes long"):
        twin.parse_head(ImplicitVRLittleEndian, data)
    parser = twin.HeadParser(ImplicitVRLittleEndian)
    assert parser.feed(data[:8])  # refused from the header alone: nothing buffered
    with pytest.raises(DatasetError):
        parser.finish()


def test_kept_tag_of_undefined_length(twin: HeadTwin) -> None:
    data = b"\x10\x00\x10\x00" + UNDEF + SEQ_DELIM
    with pytest.raises(DatasetError, match=r"\(0010,0010\) has undefined length"):
        twin.parse_head(ImplicitVRLittleEndian, data)


def test_nesting_too_deep(twin: HeadTwin) -> None:
    depth = MAX_DEPTH + 1
    data = (b"\x08\x00\x06\x00" + UNDEF + ITEM + UNDEF) * depth
    data += (ITEM_DELIM + SEQ_DELIM) * depth
    with pytest.raises(DatasetError, match="nested"):
        twin.parse_head(ImplicitVRLittleEndian, data)
    ok = (b"\x08\x00\x06\x00" + UNDEF + ITEM + UNDEF) * (MAX_DEPTH // 2)
    ok += (ITEM_DELIM + SEQ_DELIM) * (MAX_DEPTH // 2)
    assert (
        twin.parse_head(ImplicitVRLittleEndian, ok + le_implicit(0x00100020, b"ID")).patient_id
        == "ID"
    )


def test_garbage_in_a_sequence(twin: HeadTwin) -> None:
    data = b"\x08\x00\x06\x00" + UNDEF + le_implicit(0x00100010, b"AB")
    with pytest.raises(DatasetError, match="where an item was expected"):
        twin.parse_head(ImplicitVRLittleEndian, data)


def test_not_deflate(twin: HeadTwin) -> None:
    with pytest.raises(DatasetError, match="inflate"):
        twin.parse_head(DeflatedExplicitVRLittleEndian, b"\xff" * 100)


@pytest.mark.parametrize(
    "charset",
    [
        b"utf_16",
        b"undefined",
        b"zlib_codec",
        b"rot13",
        b"NOPE",
        b"ISO_IR 999",
        b"hex",
        b"ISO 2022 IR 87\\utf_32",
        b"punycode",
        b"idna",
    ],
)
def test_hostile_charsets_never_raise(twin: HeadTwin, charset: bytes) -> None:
    data = (
        le_implicit(0x00080005, charset + (b" " if len(charset) % 2 else b""))
        + le_implicit(0x00080050, b"\x1b$B\xff\x00=\x1b(B")
        + le_implicit(0x00100010, b"\xff\xfe=\x1b$)C\xe4^a")
        + le_implicit(0x00100020, b"\x80\x81\x82\xc3")
    )
    got = twin.parse_head(ImplicitVRLittleEndian, data)
    assert isinstance(got.patient_name, str)
    assert isinstance(got.patient_id, str)


# -- hypothesis -------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=st.sampled_from(ENCODINGS), data=st.binary(max_size=600))
def test_arbitrary_bytes_give_fields_or_dataset_error(twin: HeadTwin, ts: str, data: bytes) -> None:
    result = outcome(twin.parse_head, ts, data)
    assert isinstance(result, HeadFields) or result == ("error", 0xC000)


def structured_bytes() -> st.SearchStrategy[bytes]:
    """Bytes made of element-like pieces, to reach deeper states than pure noise."""
    tags = st.sampled_from(
        [
            0x00080005,
            0x00080020,
            0x00080006,
            0x00100010,
            0x00090010,
            0x00200013,
            0x00200014,
            0xFFFEE000,
            0xFFFEE00D,
            0xFFFEE0DD,
            0x00000000,
        ]
    )
    lengths = st.one_of(st.integers(0, 40), st.just(0xFFFFFFFF))
    vrs = st.sampled_from([b"SQ", b"UN", b"OB", b"LO", b"PN", b"UI", b"\x00\x00"])

    @st.composite
    def piece(draw):
        tag = draw(tags)
        kind = draw(st.integers(0, 2))
        length = draw(lengths)
        head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
        if kind == 0:
            head += struct.pack("<L", length)
        elif kind == 1:
            head += draw(vrs) + struct.pack("<H", length & 0xFFFF)
        else:
            head += draw(vrs) + b"\x00\x00" + struct.pack("<L", length)
        return head + draw(st.binary(max_size=min(length, 40)))

    return st.lists(piece(), max_size=25).map(b"".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ts=st.sampled_from([ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian]),
    data=st.one_of(structured_bytes(), st.binary(max_size=300)),
    cuts=st.lists(st.integers(1, 50), min_size=1, max_size=10),
)
def test_chunked_equals_whole(twin: HeadTwin, ts: str, data: bytes, cuts: list[int]) -> None:
    whole = outcome(twin.parse_head, ts, data)
    assert isinstance(whole, HeadFields) or whole == ("error", 0xC000)
    assert outcome(feed_chunks, twin, ts, data, cuts) == whole


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(structured_bytes(), st.binary(max_size=300)),
    cuts=st.lists(st.integers(1, 50), min_size=1, max_size=10),
)
def test_deflated_chunked_equals_whole(twin: HeadTwin, data: bytes, cuts: list[int]) -> None:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    deflated = compressor.compress(data) + compressor.flush()
    whole = outcome(twin.parse_head, DeflatedExplicitVRLittleEndian, deflated)
    assert whole == outcome(twin.parse_head, ExplicitVRLittleEndian, data)
    assert outcome(feed_chunks, twin, DeflatedExplicitVRLittleEndian, deflated, cuts) == whole


text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\\^="),
    max_size=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ts=st.sampled_from(ENCODINGS),
    data=st.one_of(structured_bytes(), st.binary(max_size=300)),
    cuts=st.lists(st.integers(1, 50), min_size=1, max_size=10),
    limit=st.integers(0, 12),
)
def test_the_cap_does_not_depend_on_fragments(
    twin: HeadTwin, ts: str, data: bytes, cuts: list[int], limit: int
) -> None:
    """With a cap of a few elements, the walk goes in spans of a few bytes: any cut of
    the same bytes gives the same outcome as the whole."""
    if ts == DeflatedExplicitVRLittleEndian:
        data = deflated(data)
    with patch.object(head_module, "MAX_ELEMENTS", limit):
        whole = outcome(twin.parse_head, ts, data)
        assert outcome(feed_chunks, twin, ts, data, cuts) == whole
        assert outcome(feed_chunks, twin, ts, data, [1]) == whole


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ts=st.sampled_from(ENCODINGS),
    description=text,
    name=text,
    cuts=st.lists(st.integers(1, 64), min_size=1, max_size=5),
)
def test_utf8_round_trip(
    twin: HeadTwin, ts: str, description: str, name: str, cuts: list[int]
) -> None:
    ds = base_dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StudyDescription = description
    ds.PatientName = name
    data = encode(ds, ts)
    got = feed_chunks(twin, ts, data, cuts)
    assert got.study_description == description.strip(" \x00")
    assert got.patient_name == name.strip(" \x00")


@pytest.mark.parametrize("ts", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_caller_may_reuse_its_buffer(twin: HeadTwin, ts: str) -> None:
    """Kept values are copies: overwriting the fed buffer changes nothing."""
    ds = base_dataset()
    data = encode(ds, ts)
    parser = twin.HeadParser(ts)
    buffer = bytearray(data)
    assert parser.feed(memoryview(buffer))
    buffer[:] = b"\x00" * len(buffer)
    assert parser.finish() == expected(ds)
    parser = twin.HeadParser(ts)
    pending = bytearray()
    for i in range(0, len(data), 7):
        pending[:] = data[i : i + 7]
        if parser.feed(pending):
            break
    pending[:] = b"\xff" * 7
    assert parser.finish() == expected(ds)


def test_done_only_after_the_last_wanted_tag(twin: HeadTwin) -> None:
    ds = base_dataset()
    data = encode(ds, ExplicitVRLittleEndian)
    end_of_instance_number = data.index(b"\x20\x00\x13\x00IS") + 8 + 2
    parser = twin.HeadParser(ExplicitVRLittleEndian)
    assert not parser.feed(data[:end_of_instance_number])
    assert not parser.done
    assert not parser.feed(data[end_of_instance_number : end_of_instance_number + 4])
    assert parser.feed(data[end_of_instance_number + 4 : end_of_instance_number + 8])
    assert parser.done
    assert parser.finish() == expected(ds)


# -- long values cost no more than short ones (issue 12, item 4) -----------------------


def hostile_data_set(charset: bytes, value: bytes) -> bytes:
    """Implicit VR LE; StudyDescription, SeriesDescription and PatientName are ``value``."""
    pad = b" " if len(charset) % 2 else b""
    return (
        le_implicit(0x00080005, charset + pad)
        + le_implicit(0x00080018, b"1.2.3.4.5.6\x00")
        + le_implicit(0x00080020, b"20200101")
        + le_implicit(0x00081030, value)
        + le_implicit(0x0008103E, value)
        + le_implicit(0x00100010, value)
        + le_implicit(0x00100020, b"PID1")
        + le_implicit(0x0020000D, b"1.2.3\x00")
        + le_implicit(0x0020000E, b"1.2.3.4\x00")
        + le_implicit(0x00200013, b"7 ")
    )


def repeated(unit: bytes, size: int) -> bytes:
    value = unit * (size // len(unit))
    return value + b" " * (len(value) % 2)


def python_calls(fn) -> int:
    """Python and C function calls made by ``fn()``: work, whatever the machine's speed."""
    calls = 0

    def count(_frame, event: str, _arg) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


HOSTILE_VALUES = [
    pytest.param(b"", b"\x1b(Z", id="unknown-escapes-default-repertoire"),
    pytest.param(b"\\ISO 2022 IR 87", b"\x1b$B\x30\x21\x1b(B", id="ir87-switching"),
    pytest.param(b"\\ISO 2022 IR 87", b"\x1b$B\xff\xfe", id="ir87-invalid-bytes"),
    pytest.param(b"GB18030", b"\x1b$)A\x81\x30", id="gb18030-escapes-invalid"),
    pytest.param(b"ISO_IR 192", b"\x1b(Z\xff^", id="utf8-escapes-delimiters"),
]


@pytest.mark.parametrize(("charset", "unit"), HOSTILE_VALUES)
def test_a_64_kib_value_costs_what_a_2_kib_value_costs(
    twin: HeadTwin, charset: bytes, unit: bytes
) -> None:
    """The data set of 64 KiB names full of escape sequences: bounded work, a safe path.

    On the unbounded decoder, 64 KiB of escape sequences were ~21,845 parts decoded (and
    logged) one by one, 32 times the work of 2 KiB: ~0.6 s of blocked event loop.
    """
    short = hostile_data_set(charset, repeated(unit, 2048))
    long = hostile_data_set(charset, repeated(unit, 65534))
    twin.parse_head(ImplicitVRLittleEndian, short)  # codecs looked up, caches warm
    work_short = python_calls(lambda: twin.parse_head(ImplicitVRLittleEndian, short))
    work_long = python_calls(lambda: twin.parse_head(ImplicitVRLittleEndian, long))
    assert work_long <= work_short + 20, (work_short, work_long)

    got = twin.parse_head(ImplicitVRLittleEndian, long)
    raw = repeated(unit, 65534)
    digest = hashlib.blake2b(raw, digest_size=4).hexdigest()
    assert dict(got.cut_values) == {
        "study_description": digest,
        "series_description": digest,
        "patient_name": digest,
    }
    for text in (got.study_description, got.series_description, got.patient_name):
        assert text is not None and len(text) <= MAX_DECODED_BYTES
    assert got.patient_id == "PID1"
    assert got.sop_instance_uid == "1.2.3.4.5.6"

    check_required(got)
    path = series_dir("PEER", got) + "/" + instance_file_name(got)
    parts = path.split("/")
    assert parts[:3] == ["SERVICES", "PACS", "PEER"]
    assert all(0 < len(p.encode()) <= 255 and not p.startswith(".") for p in parts)
    assert parts[3].startswith("PID1-") and parts[3].endswith(f"_{digest}-")
    assert parts[4].endswith(f"_{digest}-AccessionNumber-20200101")
    assert parts[5].startswith("SeriesNumber-") and f"_{digest}-" in parts[5]
    assert parts[6] == "0007-1.2.3.4.5.6.dcm"
    assert len(parts) == 7
    # Another long value: another folder.
    other = twin.parse_head(ImplicitVRLittleEndian, hostile_data_set(charset, raw[:-2] + b"xx"))
    assert series_dir("PEER", other) != series_dir("PEER", got)


def test_values_up_to_the_bound_are_decoded_whole(twin: HeadTwin) -> None:
    name = b"A" * (MAX_DECODED_BYTES - 2) + b"^B"
    got = twin.parse_head(ImplicitVRLittleEndian, le_implicit(0x00100010, name))
    assert got.patient_name == name.decode()
    assert got.cut_values == ()
    longer = name + b"CD"
    got = twin.parse_head(ImplicitVRLittleEndian, le_implicit(0x00100010, longer))
    assert got.patient_name == name.decode()
    assert [field for field, _digest in got.cut_values] == ["patient_name"]


def test_a_cut_multibyte_character_is_left_out(twin: HeadTwin) -> None:
    """ISO_IR 192: the first 1024 bytes end inside a 3-byte character, which is dropped."""
    name = "脳" * 400  # 1200 bytes
    data = le_implicit(0x00080005, b"ISO_IR 192") + le_implicit(0x00100010, name.encode())
    got = twin.parse_head(ImplicitVRLittleEndian, data)
    assert got.patient_name == "脳" * (MAX_DECODED_BYTES // 3)
