"""Where the two public DICOM series of ``shared/data`` are, wherever the checkout is."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = (
    os.environ.get("OXIDICOM_SAMPLE_DATA", ""),
    str(_ROOT.parent / "shared" / "data"),
    "/work/shared/data",
)


def sample_data_dir() -> Path | None:
    """The folder holding ``SAG-anon/`` and ``example-dicom-structural/``, if any."""
    for candidate in _CANDIDATES:
        if candidate and (Path(candidate) / "SAG-anon").is_dir():
            return Path(candidate)
    return None


def require_sample_data() -> Path:
    """The sample data folder; skip the caller (fail under CI=true) when it is missing."""
    found = sample_data_dir()
    if found is None:
        message = (
            "sample DICOM series not found (set OXIDICOM_SAMPLE_DATA to the shared/data folder)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message, allow_module_level=True)
    return found


# -- what the two series are, as the reference receiver's integration test expects them --

SAG_UID = "1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0"
STRUCTURAL_UID = "1.2.826.0.1.3680043.2.1143.515404396022363061013111326823367652"
#: The calling AE title the reference's test pushes them with (through Orthanc).
PACS = "OXITESTORTHANC"
# The series folders of CONTRACT section 2 (the reference's tests/expected_files.txt).
SAG_SERIES = (
    "SERVICES/PACS/OXITESTORTHANC/1449c1d-anonymized-20090701/"
    "MR-Brain_w_o_Contrast-98edede8b2-20130308/00005-SAG_MPRAGE_220_FOV-a27cf06"
)
STRUCTURAL_SERIES = (
    "SERVICES/PACS/OXITESTORTHANC/02-Jane_Doe-19660101/"
    "Hanke_Stadler_0024_transrep-AccessionNumber-20130717/00401-anat-T1w-661b8fc"
)
#: SeriesInstanceUID -> the keyword arguments of its registration task (CONTRACT section 3).
EXPECTED_TASKS: dict[str, dict[str, Any]] = {
    SAG_UID: {
        "PatientID": "1449c1d",
        "StudyDate": "2013-03-08",
        "StudyInstanceUID": "1.2.840.113845.11.1000000001785349915.20130308061609.6346698",
        "SeriesInstanceUID": SAG_UID,
        "pacs_name": PACS,
        "path": SAG_SERIES,
        "ndicom": 192,
        "PatientName": "anonymized",
        "PatientBirthDate": "20090701",
        "PatientAge": 1096,
        "PatientSex": "M",
        "AccessionNumber": "98edede8b2",
        "Modality": "MR",
        "ProtocolName": "SAG MPRAGE 220 FOV",
        "StudyDescription": "MR-Brain w/o Contrast",
        "SeriesDescription": "SAG MPRAGE 220 FOV",
    },
    STRUCTURAL_UID: {
        "PatientID": "02",
        "StudyDate": "2013-07-17",
        "StudyInstanceUID": "1.2.826.0.1.3680043.2.1143.2592092611698916978113112155415165916",
        "SeriesInstanceUID": STRUCTURAL_UID,
        "pacs_name": PACS,
        "path": STRUCTURAL_SERIES,
        "ndicom": 384,
        "PatientName": "Jane_Doe",
        "PatientBirthDate": "19660101",
        "PatientAge": None,
        "PatientSex": "F",
        "AccessionNumber": None,
        "Modality": "MR",
        "ProtocolName": "anat-T1w",
        "StudyDescription": "Hanke_Stadler^0024_transrep",
        "SeriesDescription": "anat-T1w",
    },
}
