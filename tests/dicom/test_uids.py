"""UID tables taken from pydicom, and the encoding of each transfer syntax."""

import re
import uuid

import pytest
from pydicom.uid import UID_dictionary

from oxidicom.dicom.uids import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    STORAGE_SOP_CLASSES,
    TRANSFER_SYNTAXES,
    UNCOMPRESSED_TRANSFER_SYNTAXES,
    VERIFICATION_SOP_CLASS,
    DatasetEncoding,
    encoding_of,
)

UID_RE = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


@pytest.mark.parametrize(
    "uid",
    [
        "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
        "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image Storage
        "1.2.840.10008.5.1.4.1.1.66",  # Raw Data Storage
        "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF Storage
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
        "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR Storage
        "1.2.840.10008.5.1.4.1.1.8",  # Standalone Overlay Storage (retired)
        "1.2.840.10008.5.1.4.1.1.5",  # NM Image Storage (Retired)
        "1.2.840.10008.5.1.1.29",  # Hardcopy Grayscale Image Storage (retired)
        "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose Storage
        "1.3.12.2.1107.5.99.3.11",  # Siemens private
        "1.3.12.2.1107.5.9.1",
        "1.3.12.2.1107.5.99.3.10",
    ],
)
def test_storage_classes_include(uid: str) -> None:
    assert uid in STORAGE_SOP_CLASSES


@pytest.mark.parametrize(
    "uid",
    [
        "1.2.840.10008.1.20.1",  # Storage Commitment Push Model
        "1.2.840.10008.1.20.2",  # Storage Commitment Pull Model
        "1.2.840.10008.1.3.10",  # Media Storage Directory Storage
        VERIFICATION_SOP_CLASS,
        "1.2.840.10008.5.1.4.1.2.2.1",  # Study Root Q/R FIND
        "1.2.840.10008.4.2",  # Storage Service Class
    ],
)
def test_storage_classes_exclude(uid: str) -> None:
    assert uid not in STORAGE_SOP_CLASSES


def test_storage_classes_all_come_from_pydicom_or_siemens() -> None:
    for uid in STORAGE_SOP_CLASSES:
        if uid.startswith("1.3.12.2.1107."):
            continue
        name, kind, *_ = UID_dictionary[uid]
        assert kind == "SOP Class"
        assert "Storage" in name
        assert "Commitment" not in name
    assert len(STORAGE_SOP_CLASSES) > 150


def test_transfer_syntaxes() -> None:
    for uid in (
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2.1.99",
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.5",
        "1.2.840.10008.1.2.4.52",  # retired JPEG Extended 3 & 5
        "1.2.840.10008.1.2.4.95",
    ):
        assert uid in TRANSFER_SYNTAXES
    assert "1.2.840.10008.1.2.6.1" not in TRANSFER_SYNTAXES  # RFC 2557 MIME
    assert "1.2.840.10008.1.2.6.2" not in TRANSFER_SYNTAXES  # XML Encoding
    assert "1.2.840.10008.5.1.4.1.1.4" not in TRANSFER_SYNTAXES
    assert UNCOMPRESSED_TRANSFER_SYNTAXES <= TRANSFER_SYNTAXES
    assert {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"} == UNCOMPRESSED_TRANSFER_SYNTAXES


@pytest.mark.parametrize(
    ("uid", "implicit", "little", "deflated"),
    [
        ("1.2.840.10008.1.2", True, True, False),
        ("1.2.840.10008.1.2\x00", True, True, False),
        ("1.2.840.10008.1.2.1", False, True, False),
        ("1.2.840.10008.1.2.2", False, False, False),
        ("1.2.840.10008.1.2.1.99", False, True, True),
        ("1.2.840.10008.1.2.4.95", False, True, True),
        ("1.2.840.10008.1.2.4.205", False, True, True),
        ("1.2.840.10008.1.20", True, True, False),
        ("1.2.840.10008.1.2.4.50", False, True, False),
        ("1.2.840.10008.1.2.5", False, True, False),
        ("9.9.9", False, True, False),
    ],
)
def test_encoding_of(uid: str, implicit: bool, little: bool, deflated: bool) -> None:
    assert encoding_of(uid) == DatasetEncoding(implicit, little, deflated)


def test_implementation_identity() -> None:
    expected = "2.25." + str(
        uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/FNNDSC/oxidicom/python").int
    )
    assert expected == IMPLEMENTATION_CLASS_UID
    assert len(IMPLEMENTATION_CLASS_UID) <= 64
    assert UID_RE.fullmatch(IMPLEMENTATION_CLASS_UID)
    assert len(IMPLEMENTATION_VERSION_NAME) <= 16
    assert IMPLEMENTATION_VERSION_NAME.isascii()


def test_what_we_accept_does_not_depend_on_pynetdicom_being_imported_first() -> None:
    import subprocess
    import sys

    script = "from oxidicom.dicom.uids import TRANSFER_SYNTAXES as T; print(sorted(T))"
    plain = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    after = subprocess.run(
        [sys.executable, "-c", "import pynetdicom; " + script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert plain == after
    assert "1.2.840.10008.1.2.4.112" in plain
