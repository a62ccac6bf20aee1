"""The CUBE path of CONTRACT section 2, its required fields and PatientAge."""

import io
import struct
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.dicom.errors import DatasetError
from oxidicom.dicom.head import HeadFields, parse_head
from oxidicom.storage import layout
from oxidicom.storage.layout import (
    check_required,
    instance_file_name,
    pacs_dir_name,
    patient_age_days,
    sanitize,
    series_dir,
    series_hash7,
    study_date_iso,
)
from oxidicom.storage.seahash import seahash
from tests.dicom.head_twins import head_twin
from tests.implementations import IMPLEMENTATIONS
from tests.sample_data import SAG_SERIES, STRUCTURAL_SERIES, require_sample_data

DATA = require_sample_data()
ALLOWED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_")


def fields(**overrides: object) -> HeadFields:
    values: dict[str, object] = {
        "specific_character_set": (),
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.4",
        "sop_instance_uid": "1.2.3.4.5",
        "study_date": "20130308",
        "accession_number": "ACC",
        "modality": "MR",
        "study_description": "Study",
        "series_description": "Series",
        "patient_name": "Name",
        "patient_id": "PID",
        "patient_birth_date": "20000101",
        "patient_sex": "F",
        "patient_age": "030Y",
        "protocol_name": "P",
        "study_instance_uid": "1.2.3",
        "series_instance_uid": "1.2.3.4",
        "series_number": "3",
        "instance_number": "7",
    }
    values.update(overrides)
    return HeadFields(**values)  # type: ignore[arg-type]


def head_of(path: Path, parse: Callable[[str, bytes], HeadFields] = parse_head) -> HeadFields:
    raw = path.read_bytes()
    (group_length,) = struct.unpack_from("<L", raw, 140)
    start = 144 + group_length
    ts = str(pydicom.dcmread(io.BytesIO(raw[:start])).file_meta.TransferSyntaxUID)
    return parse(ts, raw[start:])


# -- vectors and the real data ----------------------------------------------------------


def test_hash7_vectors() -> None:
    assert series_hash7("1.2.826.0.1.3680043.2.1143.515404396022363061013111326823367652") == (
        "661b8fc"
    )
    assert series_hash7("1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0") == ("a27cf06")


def test_hash7_has_no_leading_zeros() -> None:
    # find a UID whose 64-bit hash is < 2**60 (leading hex zero): the text is shorter
    uid = next(f"1.2.{i}" for i in range(100_000) if seahash(f"1.2.{i}".encode()) < 1 << 60)
    assert series_hash7(uid) == format(seahash(uid.encode()), "x")[:7]
    assert not series_hash7(uid).startswith("0")


@pytest.mark.parametrize("kind", IMPLEMENTATIONS)
def test_every_sample_file_gets_the_reference_path(kind: str) -> None:
    """Through both head parsers (issue 21): the pure-Python one and the compiled walk."""
    parse = head_twin(kind).parse_head
    seen = set()
    for path in sorted((DATA / "SAG-anon").glob("*.dcm")):
        f = head_of(path, parse)
        assert check_required(f) == []
        assert series_dir("OXITESTORTHANC", f) == SAG_SERIES
        name = instance_file_name(f)
        assert name == path.name  # SAG-anon is already named NNNN-<SOPInstanceUID>.dcm
        seen.add(name)
    for path in sorted((DATA / "example-dicom-structural" / "dicoms").glob("*.dcm")):
        f = head_of(path, parse)
        assert check_required(f) == []
        assert series_dir("OXITESTORTHANC", f) == STRUCTURAL_SERIES
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        name = instance_file_name(f)
        assert name == f"{int(ds.InstanceNumber):04d}-{ds.SOPInstanceUID}.dcm"
        seen.add(name)
    assert len(seen) == 576


def test_reference_file_names() -> None:
    f = fields(
        instance_number="1",
        sop_instance_uid="1.2.826.0.1.3680043.2.1143.1590429688519720198888333603882344634",
    )
    assert instance_file_name(f) == (
        "0001-1.2.826.0.1.3680043.2.1143.1590429688519720198888333603882344634.dcm"
    )


# -- field rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("MR-Brain w/o Contrast", "MR-Brain_w_o_Contrast"),
        ("Hanke_Stadler^0024_transrep", "Hanke_Stadler_0024_transrep"),
        ("a  //  b", "a_b"),
        ("é中文x", "_x"),
        ("a\x00b", "a_b"),
        ("1.2-3", "1.2-3"),
        ("", ""),
        ("..", ".."),
    ],
)
def test_sanitize(value: str, expected: str) -> None:
    assert sanitize(value) == expected


def test_missing_optional_fields_become_keywords() -> None:
    for missing in (None, ""):
        f = fields(
            study_description=missing,
            accession_number=missing,
            series_description=missing,
            series_number=missing,
            instance_number=missing,
            patient_name=missing,
            patient_birth_date=missing,
        )
        assert series_dir("PACS", f) == (
            "SERVICES/PACS/PACS/PID--/StudyDescription-AccessionNumber-20130308/"
            f"SeriesNumber-SeriesDescription-{series_hash7('1.2.3.4')}"
        )
        assert instance_file_name(f) == "InstanceNumber-1.2.3.4.5.dcm"


@pytest.mark.parametrize(
    ("value", "series", "instance"),
    [
        ("7", "00007", "0007"),
        ("+7", "00007", "0007"),
        ("007", "00007", "0007"),
        ("0", "00000", "0000"),
        ("401", "00401", "0401"),
        ("123456", "123456", "123456"),
        ("-3", "000-3", "00-3"),
        ("3.0", "003.0", "03.0"),
        ("1\\2", "001_2", "01_2"),
        ("a/b", "00a_b", "0a_b"),
        ("1 2", "001_2", "01_2"),
        ("٣", "0000_", "000_"),  # a non-ASCII digit is text, not a number
        ("9" * 5000, "9" * 75 + "_", None),  # no int(), so no digit limit; cut
    ],
)
def test_series_and_instance_numbers(value: str, series: str, instance: str | None) -> None:
    f = fields(series_number=value, instance_number=value)
    component = series_dir("P", f).split("/")[-1]
    assert component.startswith(series)
    if instance is not None:
        assert instance_file_name(f) == f"{instance}-1.2.3.4.5.dcm"


def test_study_date_in_path_is_as_received_sanitized() -> None:
    f = fields(study_date="2013-03-08")
    assert series_dir("P", f).split("/")[4] == "Study-ACC-2013-03-08"


def test_patient_and_pacs_components() -> None:
    f = fields(patient_id="02", patient_name="Jane^Doe", patient_birth_date="19660101")
    parts = series_dir("  OXITESTORTHANC \x00", f).split("/")
    assert parts[:4] == ["SERVICES", "PACS", "OXITESTORTHANC", "02-Jane_Doe-19660101"]


# -- required ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("study_instance_uid", "required attribute StudyInstanceUID (0020,000D) is missing"),
        ("series_instance_uid", "required attribute SeriesInstanceUID (0020,000E) is missing"),
        ("sop_instance_uid", "required attribute SOPInstanceUID (0008,0018) is missing"),
        ("patient_id", "required attribute PatientID (0010,0020) is missing"),
        ("study_date", "required attribute StudyDate (0008,0020) is missing"),
    ],
)
def test_required_missing(field: str, message: str) -> None:
    with pytest.raises(DatasetError) as info:
        check_required(fields(**{field: None}))
    assert info.value.status == 0xC001
    assert info.value.comment == message


@pytest.mark.parametrize("field", ["study_instance_uid", "series_instance_uid", "sop_instance_uid"])
def test_required_empty_uid(field: str) -> None:
    with pytest.raises(DatasetError, match="is empty") as info:
        check_required(fields(**{field: ""}))
    assert info.value.status == 0xC001


def test_empty_patient_id_is_accepted() -> None:
    assert check_required(fields(patient_id="")) == []


@pytest.mark.parametrize(
    "date",
    [
        "2013-13-45",
        "20131345",
        "20130230",
        "2013030",
        "",
        "2013/03/08",
        "0000101",
        "00000101",
        "\uff12\uff10\uff11\uff13\uff10\uff13\uff10\uff18"  # fullwidth digits,
        "20130308 1",
    ],
)
def test_study_date_invalid(date: str) -> None:
    with pytest.raises(DatasetError) as info:
        check_required(fields(study_date=date))
    assert info.value.status == 0xC001
    assert info.value.comment == f"StudyDate {date!r} is not a date YYYYMMDD"
    with pytest.raises(DatasetError):
        study_date_iso(date)


def test_study_date_iso_form_is_tolerated_with_a_warning() -> None:
    warnings = check_required(fields(study_date="2013-03-08"))
    assert len(warnings) == 1
    assert "2013-03-08" in warnings[0]
    assert check_required(fields(study_date="20240229")) == []


def test_study_date_iso() -> None:
    assert study_date_iso("20130308") == "2013-03-08"
    assert study_date_iso("2013-03-08") == "2013-03-08"
    assert study_date_iso("20000229") == "2000-02-29"
    with pytest.raises(DatasetError):
        study_date_iso("19000229")


# -- PatientAge -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "days"),
    [
        ("030Y", 10957),
        ("020D", 20),
        ("2W", 14),
        ("5M", 152),
        ("003Y", 1096),
        ("000D", 0),
        ("1M", 30),
        ("6M", 183),  # 182.64
        ("050y", 18262),
        (" 030Y ", 10957),
        ("1.5Y", 548),  # 547.86
        ("42", None),  # the sample data's invalid AS
        ("Y", None),
        ("-3Y", None),
        ("3 Y", None),
        ("3YY", None),
        ("", None),
        (None, None),
        ("9" * 5000 + "Y", None),
    ],
)
def test_patient_age_days(age: str | None, days: int | None) -> None:
    assert patient_age_days(age) == days


# -- safety -----------------------------------------------------------------------------


def assert_safe(path: str, depth: int) -> None:
    parts = path.split("/")
    assert len(parts) == depth
    assert parts[:2] == ["SERVICES", "PACS"]
    for part in parts:
        assert part not in ("", ".", "..")
        assert not part.startswith(".")
        assert len(part.encode()) <= 255
        assert set(part) <= ALLOWED, part


@pytest.mark.parametrize(
    ("ae", "component"),
    [
        ("..", "_.."),
        (".", "_."),
        ("", "_"),
        ("   ", "_"),
        ("/", "_"),
        ("\x00", "_"),
        ("../../etc", "_.._.._etc"),
        (".hidden", "_.hidden"),
        ("A/../B", "A_.._B"),
    ],
)
def test_hostile_ae_titles(ae: str, component: str) -> None:
    assert pacs_dir_name(ae) == component
    path = series_dir(ae, fields())
    assert path.split("/")[2] == component
    assert_safe(path, 6)


@pytest.mark.parametrize(
    "value", ["..", ".", "/", "\x00", "../..", "/etc/passwd", "x" * 300, "é" * 300, "\U0001f600"]
)
def test_hostile_values(value: str) -> None:
    f = fields(
        patient_id=value,
        patient_name=value,
        patient_birth_date=value,
        study_description=value,
        accession_number=value,
        study_date=value,
        series_number=value,
        series_description=value,
        series_instance_uid=value,
        instance_number=value,
        sop_instance_uid=value,
    )
    path = series_dir(value, f) + "/" + instance_file_name(f)
    assert_safe(path, 7)
    assert path.endswith(".dcm")


def test_long_components_are_cut_with_a_hash_and_stay_unique() -> None:
    a = fields(study_description="A" * 300 + "1", sop_instance_uid="1." * 200 + "1")
    b = fields(study_description="A" * 300 + "2", sop_instance_uid="1." * 200 + "2")
    study_a = series_dir("P", a).split("/")[4]
    study_b = series_dir("P", b).split("/")[4]
    assert study_a != study_b
    assert len(study_a) <= 255
    assert study_a.endswith("-ACC-20130308")
    name_a, name_b = instance_file_name(a), instance_file_name(b)
    assert name_a != name_b
    assert name_a.startswith("0007-1.1.")
    assert name_a.endswith(".dcm")
    assert len(name_a) <= 255
    # the series hash is never cut
    long_series = fields(series_description="S" * 400)
    assert series_dir("P", long_series).endswith("-" + series_hash7("1.2.3.4"))


def test_components_of_exactly_255_bytes_are_kept() -> None:
    desc = "D" * (255 - len("-ACC-20130308"))
    assert series_dir("P", fields(study_description=desc)).split("/")[4] == (desc + "-ACC-20130308")


def test_cached_equals_uncached() -> None:
    f = fields()
    first = series_dir("PACS", f)
    layout.forget_series_dirs()
    assert series_dir("PACS", f) == first
    assert series_dir("PACS", fields(sop_instance_uid="9.9")) == first  # per series


@pytest.mark.parametrize(
    "changed",
    [
        "patient_id",
        "patient_name",
        "patient_birth_date",
        "study_description",
        "accession_number",
        "study_date",
        "series_number",
        "series_description",
        "series_instance_uid",
        "cut_values",
    ],
)
def test_the_memory_of_the_last_series_sees_every_input_change(changed: str) -> None:
    """Right after a series' folder, an instance differing in any one input gets its own."""
    value: object = (("study_description", "0badcafe"),) if changed == "cut_values" else "19990101"
    other = fields(**{changed: value})
    layout.forget_series_dirs()
    fresh = series_dir("PACS", other)
    assert fresh != series_dir("PACS", fields())
    assert series_dir("PACS", other) == fresh
    assert series_dir("PACS2", other) != fresh  # the calling AE title is an input too


optional = st.one_of(st.none(), st.text(max_size=300))


@settings(max_examples=300, deadline=None)
@given(
    ae=st.text(max_size=300),
    patient_id=st.text(max_size=300),
    sop=st.text(min_size=1, max_size=300),
    patient_name=optional,
    birth=optional,
    study_description=optional,
    accession=optional,
    study_date=st.text(max_size=40),
    series_number=optional,
    series_description=optional,
    series_uid=st.text(min_size=1, max_size=300),
    instance_number=optional,
)
def test_paths_are_always_safe_and_stable(
    ae,
    patient_id,
    sop,
    patient_name,
    birth,
    study_description,
    accession,
    study_date,
    series_number,
    series_description,
    series_uid,
    instance_number,
) -> None:
    f = fields(
        patient_id=patient_id,
        sop_instance_uid=sop,
        patient_name=patient_name,
        patient_birth_date=birth,
        study_description=study_description,
        accession_number=accession,
        study_date=study_date,
        series_number=series_number,
        series_description=series_description,
        series_instance_uid=series_uid,
        instance_number=instance_number,
    )
    path = series_dir(ae, f) + "/" + instance_file_name(f)
    assert_safe(path, 7)
    layout.forget_series_dirs()
    assert series_dir(ae, f) + "/" + instance_file_name(f) == path


def test_a_cut_value_is_always_marked_with_the_digest_of_its_raw_bytes() -> None:
    """HeadFields.cut_values: the text is only the beginning of a value over 1 KiB."""
    short = fields(study_description="abc", cut_values=(("study_description", "0badcafe"),))
    assert series_dir("P", short).split("/")[4] == "abc_0badcafe-ACC-20130308"
    long = fields(patient_name="N" * 1000, cut_values=(("patient_name", "0badcafe"),))
    patient = series_dir("P", long).split("/")[3]
    assert patient == "PID-" + "N" * 75 + "_0badcafe-20000101"
    name = instance_file_name(
        fields(sop_instance_uid="1.2.3", cut_values=(("instance_number", "12345678"),))
    )
    assert name == "0007_12345678-1.2.3.dcm"  # the beginning of the number, padded as ever


@pytest.mark.parametrize(
    ("field", "what"),
    [
        ("study_instance_uid", "StudyInstanceUID"),
        ("series_instance_uid", "SeriesInstanceUID"),
        ("sop_instance_uid", "SOPInstanceUID"),
    ],
)
def test_a_cut_uid_is_refused(field: str, what: str) -> None:
    with pytest.raises(DatasetError, match=f"{what} .* is longer than 1024 bytes") as info:
        check_required(fields(cut_values=((field, "00000000"),)))
    assert info.value.status == 0xC001


def test_a_long_study_date_is_quoted_short() -> None:
    with pytest.raises(DatasetError) as info:
        check_required(fields(study_date="9" * 1000))
    assert len(info.value.comment) < 120


def test_valid_study_dates_are_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    # The cache of valid dates (a study repeats its date) never lets an invalid one
    # through, and starts over when full.
    remembered: set[str] = set()
    monkeypatch.setattr(layout, "_VALID_DATES", remembered)
    monkeypatch.setattr(layout, "_VALID_DATES_MAX", 3)
    for _ in range(2):  # the second round answers from the cache
        assert check_required(fields(study_date="20130308")) == []
        with pytest.raises(DatasetError):
            check_required(fields(study_date="20130230"))
    assert remembered == {"20130308"}
    for date in ("20130309", "20130310", "20130311"):
        assert check_required(fields(study_date=date)) == []
    assert remembered == {"20130311"}  # cleared when full, then added
    assert len(check_required(fields(study_date="2013-03-08"))) == 1  # ISO: still a warning
    assert "2013-03-08" not in remembered
