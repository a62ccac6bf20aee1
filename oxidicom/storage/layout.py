"""Where CUBE expects each received instance: the path of CONTRACT section 2 (pure).

::

    SERVICES/PACS/{pacs}/{PatientID}-{PatientName}-{PatientBirthDate}
        /{StudyDescription}-{AccessionNumber}-{StudyDate}
        /{SeriesNumber:05}-{SeriesDescription}-{hash7}
        /{InstanceNumber:04}-{SOPInstanceUID}.dcm

Field rules (the values come from :class:`~oxidicom.dicom.head.HeadFields`, already
decoded with the SpecificCharacterSet and stripped of surrounding spaces and NUL):

- Every field is sanitized: each run of characters outside ``[A-Za-z0-9.-]`` becomes one
  ``_`` (NUL and ``/`` included, so neither can reach the file system).
- PatientName and PatientBirthDate, absent or empty, become ``""``. StudyDescription,
  AccessionNumber, SeriesDescription, SeriesNumber and InstanceNumber, absent *or empty*,
  become their keyword (the sample data's empty AccessionNumber gives ``AccessionNumber``).
- SeriesNumber (width 5) and InstanceNumber (width 4), PS3.5 Table 6.2-1 IS: a value that
  is a non-negative integer, i.e. ASCII digits with an optional leading ``+`` (surrounding
  spaces are already gone), is printed as that integer zero-padded: ``"7"``, ``"+7"`` and
  ``"007"`` all give ``0007``, ``"12345"`` gives ``12345``. Anything else (``"-3"``,
  ``"3.0"``, ``"1e2"``, a multi-valued ``"1\\2"``) is kept as text: sanitized, then
  left-padded with ``0`` to the width (``"-3"`` -> ``00-3``, ``"1\\2"`` -> ``01_2``).
  This matches the reference receiver, whose ``u32`` parse accepts ``+`` and leading zeros.
- ``hash7``: the first 7 characters of the lowercase hexadecimal SeaHash of the
  SeriesInstanceUID's bytes (no leading zeros).
- ``pacs`` is the calling AE title, trimmed of spaces and NUL, sanitized; empty -> ``_``.

Safety (every component is a single, non-hidden name of at most 255 bytes):

- A component that starts with ``.`` gets a ``_`` prefix: ``.`` -> ``_.``, ``..`` ->
  ``_..``, ``.hidden`` -> ``_.hidden``. Only ``pacs`` can be exactly ``.`` or ``..``
  (the other components always contain ``-``), but no component may be hidden either,
  since FILES_ROOT's hidden folder is ours.
- After sanitizing, components are ASCII, so characters are bytes. A component longer than
  255 bytes is rebuilt with each of its ``n`` fields capped at
  ``(255 - len(separators and suffix)) // n`` characters; a field longer than its cap is
  cut to ``cap - 9`` characters followed by ``_`` and the 8 lowercase hex digits of the
  low 32 bits of the SeaHash of the whole (sanitized) field. Components of at most 255
  bytes are never cut (only the ``.`` rule above can touch them), so the reference's
  paths are kept whenever they were valid names, and distinct long values stay distinct.
  The ``.dcm`` suffix, the series ``hash7`` and the dates are never cut in practice
  (they are shorter than any cap).
- A value longer than :data:`~oxidicom.dicom.head.MAX_DECODED_BYTES` (1024) bytes as
  received, far beyond what the standard allows any of these fields, is only decoded
  from its first bytes (:attr:`HeadFields.cut_values`). Its field is always shown cut,
  whatever the length of its component: ``cap - 9`` characters, ``_`` and the 8 hex
  digits of the BLAKE2b digest of all its raw bytes (a digest of the decoded text would
  need all of it decoded). Every value of at most 1024 bytes gives the path it always
  gave. Such a StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID is refused (0xC001).
"""

import re
import sys
from functools import lru_cache
from typing import Final, NoReturn

from oxidicom.dicom.errors import MissingAttributeError
from oxidicom.dicom.head import MAX_DECODED_BYTES, HeadFields
from oxidicom.storage.seahash import seahash
from oxidicom.support.extensions import load_compiled

MAX_COMPONENT: Final = 255
_UID_CHARS: Final = "0123456789."
#: The same, to delete from a UID's bytes (a UID of only these leaves nothing: 3x faster
#: than str.strip with a set of characters, which searches the set for every character).
_UID_BYTES: Final = _UID_CHARS.encode()
#: UIDs that identify the instance, its series, its study: never cut (check_required).
_CUT_UIDS: Final = {
    "study_instance_uid": "StudyInstanceUID (0020,000D)",
    "series_instance_uid": "SeriesInstanceUID (0020,000E)",
    "sop_instance_uid": "SOPInstanceUID (0008,0018)",
}
#: Characters of a value quoted in an error message.
_QUOTED: Final = 64
_INVALID_RUN: Final = re.compile(r"[^A-Za-z0-9.\-]+")
_UNSIGNED: Final = re.compile(r"\+?[0-9]+")
_DATE: Final = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_ISO_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_AGE: Final = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,9})?)([DWMYdwmy])")
#: StudyDate values ``YYYYMMDD`` found valid, so that the next instance of the study
#: skips the check. Bounded: past this many (an archive migration), it starts over.
_VALID_DATES: Final[set[str]] = set()
_VALID_DATES_MAX: Final = 4096
#: Days per unit of PatientAge, in hundredths (CONTRACT section 3).
_AGE_CENTIDAYS: Final = {"D": 100, "W": 700, "M": 3044, "Y": 36524}


def sanitize(value: str) -> str:
    """Replace each run of characters outside ``[A-Za-z0-9.-]`` with one ``_``."""
    return _INVALID_RUN.sub("_", value)


def series_hash7(series_instance_uid: str) -> str:
    """First 7 characters of ``format(seahash(uid bytes), "x")`` (CONTRACT section 2).

    The bytes are the Latin-1 encoding of the value (its bytes as received, since
    :mod:`oxidicom.dicom.head` decodes UIDs as Latin-1), UTF-8 if that is impossible.
    """
    try:  # the value's own bytes: HeadFields decodes UIDs as Latin-1
        raw = series_instance_uid.encode("latin-1")
    except UnicodeEncodeError:
        raw = series_instance_uid.encode("utf-8")
    return format(seahash(raw), "x")[:7]


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _valid_date(year: str, month: str, day: str) -> bool:
    y, m, d = int(year), int(month), int(day)
    return y >= 1 and 1 <= m <= 12 and 1 <= d <= _days_in_month(y, m)


def _parse_study_date(study_date: str) -> tuple[str, bool] | None:
    """``(YYYY-MM-DD, was_iso)`` for a DA value (PS3.5 Table 6.2-1), or None."""
    m = _DATE.fullmatch(study_date)
    if m is not None and _valid_date(*m.groups()):
        return f"{m[1]}-{m[2]}-{m[3]}", False
    m = _ISO_DATE.fullmatch(study_date)
    if m is not None and _valid_date(*m.groups()):
        return study_date, True
    return None


def check_required(fields: HeadFields) -> list[str]:
    """Check CONTRACT section 2 "Required"; return warnings, raise DatasetError (0xC001).

    StudyInstanceUID (0020,000D), SeriesInstanceUID (0020,000E), SOPInstanceUID
    (0008,0018) must be present and non-empty (an empty UID is no UID, PS3.5 9.1);
    PatientID (0010,0020) must be present (it is Type 2, PS3.3 C.7.1.1, so empty is
    allowed, as in the reference); StudyDate (0008,0020) must be a real date ``YYYYMMDD``
    (PS3.5 Table 6.2-1 DA). A ``YYYY-MM-DD`` StudyDate (the pre-1993 ACR-NEMA form) is
    accepted with a warning.
    """
    if not fields.study_instance_uid:
        _missing(fields.study_instance_uid, "StudyInstanceUID (0020,000D)")
    if not fields.series_instance_uid:
        _missing(fields.series_instance_uid, "SeriesInstanceUID (0020,000E)")
    if not fields.sop_instance_uid:
        _missing(fields.sop_instance_uid, "SOPInstanceUID (0008,0018)")
    for field, _digest in fields.cut_values:
        what = _CUT_UIDS.get(field)
        if what is not None:
            raise MissingAttributeError(
                f"{what} is longer than {MAX_DECODED_BYTES} bytes (a UID has at most 64)"
            )
    if fields.patient_id is None:
        _missing(None, "PatientID (0010,0020)")
    study_date = fields.study_date
    if study_date is None:
        _missing(None, "StudyDate (0008,0020)")
    if study_date in _VALID_DATES:
        return []  # the common case: every instance of a study repeats its date
    if (
        len(study_date) == 8
        and study_date.isascii()
        and study_date.isdigit()
        and _valid_date(study_date[:4], study_date[4:6], study_date[6:])
    ):
        if len(_VALID_DATES) >= _VALID_DATES_MAX:
            _VALID_DATES.clear()
        _VALID_DATES.add(study_date)
        return []  # without a regular expression
    parsed = _parse_study_date(study_date)
    if parsed is None:
        raise MissingAttributeError(f"StudyDate {_quoted(study_date)} is not a date YYYYMMDD")
    if parsed[1]:
        return [f"StudyDate {study_date!r} is not YYYYMMDD; accepted as {parsed[0]}"]
    return []


def _quoted(value: str) -> str:
    """``repr`` of a value for a message, its first characters only."""
    return repr(value) if len(value) <= _QUOTED else repr(value[:_QUOTED]) + "..."


def _missing(value: str | None, what: str) -> NoReturn:
    state = "missing" if value is None else "empty"
    raise MissingAttributeError(f"required attribute {what} is {state}")


def study_date_iso(study_date: str) -> str:
    """``'20130308'`` or ``'2013-03-08'`` -> ``'2013-03-08'``; else DatasetError (0xC001)."""
    parsed = _parse_study_date(study_date.strip(" \x00"))
    if parsed is None:
        raise MissingAttributeError(f"StudyDate {study_date!r} is not a date YYYYMMDD")
    return parsed[0]


def patient_age_days(age: str | None) -> int | None:
    """PatientAge (AS, PS3.5 Table 6.2-1) in days, rounded half up; None if unparseable.

    ``nnnD`` x1, ``nnnW`` x7, ``nnnM`` x30.44, ``nnnY`` x365.24 (CONTRACT section 3):
    ``030Y`` -> 10957, ``020D`` -> 20, ``2W`` -> 14, ``5M`` -> 152. 1 to 9 digits,
    an optional decimal part and a lowercase unit are tolerated; no unit (``"42"``),
    signs, or anything else is None (the caller logs a warning).
    """
    if age is None:
        return None
    m = _AGE.fullmatch(age.strip(" \x00"))
    if m is None:
        return None
    number, unit = m.groups()
    centidays = _AGE_CENTIDAYS[unit.upper()]
    if "." not in number:
        return (int(number) * centidays + 50) // 100  # exact, half up
    whole, frac = number.split(".")
    scale = 10 ** len(frac)
    exact = int(whole + frac) * centidays  # = days * 100 * scale
    return (exact + 50 * scale) // (100 * scale)


def _number(value: str | None, keyword: str, width: int) -> str:
    """SeriesNumber/InstanceNumber as a zero-padded integer or padded sanitized text."""
    if not value:
        return keyword
    if _UNSIGNED.fullmatch(value) is not None:  # the integer's digits, without int()
        return (value.lstrip("+").lstrip("0") or "0").rjust(width, "0")
    return sanitize(value).rjust(width, "0")


def _short_hash(field: str) -> str:
    return format(seahash(field.encode("ascii")) & 0xFFFFFFFF, "08x")


def _component(
    fields: list[str], suffix: str = "", digests: tuple[str | None, ...] | None = None
) -> str:
    """Join ``fields`` with ``-``, un-hide, and keep it within 255 bytes (module doc).

    ``digests[i]``, when not None, names the whole raw value of field ``i``, of which
    ``fields[i]`` is only the beginning (:attr:`HeadFields.cut_values`): that field is
    always shown cut, with this digest.
    """
    if fields[0].startswith("."):
        fields[0] = "_" + fields[0]
    name = "-".join(fields) + suffix
    if len(name) <= MAX_COMPONENT and not digests:
        return name
    cap = (MAX_COMPONENT - len(suffix) - (len(fields) - 1)) // len(fields)
    digests = digests or (None,) * len(fields)
    shown = [_capped(f, digest, cap) for f, digest in zip(fields, digests, strict=True)]
    return "-".join(shown) + suffix


def _capped(field: str, digest: str | None, cap: int) -> str:
    """``field`` within ``cap`` characters: cut, and marked with a hash, if it is longer."""
    if digest is not None:  # the beginning of a longer value: always marked
        return f"{field[: cap - 9]}_{digest}"
    if len(field) <= cap:
        return field
    return f"{field[: cap - 9]}_{_short_hash(field)}"


def _digests(cut: dict[str, str], *names: str) -> tuple[str | None, ...] | None:
    """The digests of the cut values among ``names``, or None when none is cut."""
    found = tuple(cut.get(name) for name in names)
    return found if any(found) else None


def pacs_dir_name(calling_ae_title: str) -> str:
    """The ``{pacs}`` component for a calling AE title (trimmed, sanitized, never empty)."""
    name = sanitize(calling_ae_title.strip(" \x00"))
    return _component([name]) if name else "_"


@lru_cache(maxsize=1024)
def _series_dir(
    pacs_name: str,
    patient_id: str | None,
    patient_name: str | None,
    patient_birth_date: str | None,
    study_description: str | None,
    accession_number: str | None,
    study_date: str | None,
    series_number: str | None,
    series_description: str | None,
    series_instance_uid: str | None,
    cut_values: tuple[tuple[str, str], ...],
) -> str:
    cut = dict(cut_values)
    patient = _component(
        [
            sanitize(patient_id or ""),
            sanitize(patient_name or ""),
            sanitize(patient_birth_date or ""),
        ],
        digests=_digests(cut, "patient_id", "patient_name", "patient_birth_date"),
    )
    study = _component(
        [
            sanitize(study_description or "StudyDescription"),
            sanitize(accession_number or "AccessionNumber"),
            sanitize(study_date or ""),
        ],
        digests=_digests(cut, "study_description", "accession_number", "study_date"),
    )
    series = _component(
        [
            _number(series_number, "SeriesNumber", 5),
            sanitize(series_description or "SeriesDescription"),
            series_hash7(series_instance_uid or ""),
        ],
        # hash7 is never cut: check_required refuses a cut SeriesInstanceUID.
        digests=_digests(cut, "series_number", "series_description", "hash7"),
    )
    return f"SERVICES/PACS/{pacs_dir_name(pacs_name)}/{patient}/{study}/{series}"


#: The last series folder made and what it was made from. Consecutive instances of a series
#: repeat the inputs: comparing them with the last ones costs less than hashing them all
#: for the LRU cache (strings decoded from each data set carry no hash yet).
_last_series_dir: tuple[tuple[object, ...], str] = ((), "")


def series_dir(pacs_name: str, fields: HeadFields) -> str:
    """The series folder relative to FILES_ROOT, no trailing slash (CONTRACT section 2).

    ``pacs_name`` is the calling AE title (trimmed and sanitized here). Memoized on the
    inputs it reads: one series repeats them for each of its instances.
    """
    global _last_series_dir
    inputs = (
        pacs_name,
        fields.patient_id,
        fields.patient_name,
        fields.patient_birth_date,
        fields.study_description,
        fields.accession_number,
        fields.study_date,
        fields.series_number,
        fields.series_description,
        fields.series_instance_uid,
        fields.cut_values,
    )
    last_inputs, last = _last_series_dir
    if inputs == last_inputs:
        return last
    made = _series_dir(*inputs)
    _last_series_dir = (inputs, made)
    return made


def forget_series_dirs() -> None:
    """Empty the memories of :func:`series_dir` (tests compare with a fresh computation)."""
    global _last_series_dir
    _last_series_dir = ((), "")
    _series_dir.cache_clear()
    if _c is not None:
        _c.forget()


def instance_file_name(fields: HeadFields) -> str:
    """``{InstanceNumber:04}-{SOPInstanceUID}.dcm``, sanitized and at most 255 bytes."""
    number = fields.instance_number
    uid = fields.sop_instance_uid or "SOPInstanceUID"
    if (
        number
        and number.isascii()
        and number.isdigit()
        and uid.isascii()
        and not uid.encode().translate(None, _UID_BYTES)
        and not fields.cut_values
    ):
        # Fast path (nearly every instance): digits, and a UID of digits and dots.
        name = f"{(number.lstrip('0') or '0').rjust(4, '0')}-{uid}.dcm"
        if len(name) <= MAX_COMPONENT:
            return name
    return _component(
        [_number(number, "InstanceNumber", 4), sanitize(uid)],
        ".dcm",
        _digests(dict(fields.cut_values), "instance_number", "sop_instance_uid"),
    )


#: The references, whichever are in use (the differential tests call both).
check_required_py = check_required
series_dir_py = series_dir
instance_file_name_py = instance_file_name

# The compiled twin (oxidicom/storage/_layout_c.pyx) of the three calls made for every
# stored instance: their common cases, the rest handed back to the functions above.
_c = load_compiled("oxidicom.storage._layout_c")
if _c is not None:
    _c.bind(sys.modules[__name__])
    check_required = _c.check_required
    series_dir = _c.series_dir
    instance_file_name = _c.instance_file_name
