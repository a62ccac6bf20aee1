"""The two public DICOM series the tests push, wherever the checkout is.

They are looked for, in order, in ``$OXIDICOM_SAMPLE_DATA``, in ``shared/data`` beside
the checkout (and ``/work/shared/data``), and in the download cache. When none has them,
the test session downloads them from their public repositories at pinned commits, with
pooch, checks every file against ``tests/data/MANIFEST.sha256`` and keeps them in the
cache, outside the checkout (``$OXIDICOM_SAMPLE_DATA_CACHE``, by default
``~/.cache/oxidicom/sample-data``). ``$OXIDICOM_SAMPLE_DATA_MIRROR`` replaces
``https://raw.githubusercontent.com`` in every URL (a mirror or a proxy). When they can
be had in none of these ways, a test that needs them is skipped, and fails under CI=true.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parents[1]
#: sha256 and path (under the data folder) of each of the 576 files.
MANIFEST = Path(__file__).resolve().parent / "data" / "MANIFEST.sha256"
GITHUB_RAW = "https://raw.githubusercontent.com"
#: Further tries of a failed download (pooch waits 1 s, then 2 s, ... between them).
RETRIES = 2


@dataclass(frozen=True)
class Origin:
    """A data folder's public repository, at the commit the tests were written against."""

    folder: str
    repository: str
    commit: str

    def url(self, path_in_folder: str, base: str = GITHUB_RAW) -> str:
        return f"{base}/{self.repository}/{self.commit}/{path_in_folder}"


#: The commits FNNDSC/oxidicom's own integration test downloads (shared/data/README.md).
ORIGINS = (
    Origin("SAG-anon", "FNNDSC/SAG-anon", "3d6e850b625e940aab02f0120cf5fb15977216bc"),
    Origin(
        "example-dicom-structural",
        "datalad/example-dicom-structural",
        "f077bcc8d502ce8155507bd758cb3b7ccc887f40",
    ),
)


class SampleDataError(Exception):
    """The series could not be downloaded or did not match the manifest: one line."""


def manifest(path: Path = MANIFEST) -> dict[str, str]:
    """``folder/file`` -> sha256, from a ``sha256sum`` listing."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            entries[name.strip()] = digest
    return entries


def download_urls(names: list[str], mirror: str | None = None) -> dict[str, str]:
    """The URL of each manifest entry, at its pinned commit; ``mirror`` replaces GitHub's."""
    base = (mirror or GITHUB_RAW).rstrip("/")
    origins = {origin.folder: origin for origin in ORIGINS}
    urls = {}
    for name in names:
        folder, _, rest = name.partition("/")
        urls[name] = origins[folder].url(rest, base)
    return urls


def cache_dir() -> Path:
    """Where downloaded series are kept: outside the checkout, kept between sessions."""
    configured = os.environ.get("OXIDICOM_SAMPLE_DATA_CACHE", "")
    if configured:
        return Path(configured)
    import pooch

    return Path(pooch.os_cache("oxidicom")) / "sample-data"


def fetch_sample_data(
    cache: Path, mirror: str | None = None, entries: dict[str, str] | None = None
) -> Path:
    """Every file of the manifest in ``cache``, downloaded where missing or wrong; ``cache``.

    pooch checks each file's sha256, on download and on every later call (a file that
    no longer matches is downloaded again); a download that does not match is never put
    in place.
    """
    import pooch

    entries = manifest() if entries is None else entries
    registry = {name: f"sha256:{digest}" for name, digest in entries.items()}
    fetcher = pooch.create(
        path=cache,
        base_url="",
        registry=registry,
        urls=download_urls(list(registry), mirror),
        retry_if_failed=RETRIES,
    )
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=60)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # not one line per file
    try:
        for name in registry:
            fetcher.fetch(name, downloader=downloader)
    except Exception as error:  # requests' and pooch's own (hash mismatch: ValueError)
        raise SampleDataError(f"{type(error).__name__}: {error}") from error
    finally:
        logger.setLevel(level)
    return cache


def _candidates() -> list[Path]:
    found = [
        os.environ.get("OXIDICOM_SAMPLE_DATA", ""),
        str(_ROOT.parent / "shared" / "data"),
        "/work/shared/data",
    ]
    return [Path(c) for c in found if c]


def _complete(folder: Path, entries: dict[str, str]) -> bool:
    return all((folder / name).is_file() for name in entries)


def sample_data_dir() -> Path | None:
    """The folder holding ``SAG-anon/`` and ``example-dicom-structural/``, if any (no download)."""
    for candidate in _candidates():
        if (candidate / "SAG-anon").is_dir():
            return candidate
    cache = cache_dir()
    if _complete(cache, manifest()):
        return cache
    return None


@functools.cache
def _obtained() -> Path | str:
    """The data folder, found or downloaded once per session; else why not."""
    for candidate in _candidates():
        if (candidate / "SAG-anon").is_dir():
            return candidate
    cache = cache_dir()
    mirror = os.environ.get("OXIDICOM_SAMPLE_DATA_MIRROR") or None
    try:
        return fetch_sample_data(cache, mirror)
    except SampleDataError as error:
        return (
            "sample DICOM series not found (set OXIDICOM_SAMPLE_DATA to the shared/data"
            f" folder) and not downloaded into {cache} from {mirror or GITHUB_RAW}"
            f" (OXIDICOM_SAMPLE_DATA_MIRROR replaces it): {error}"
        )


def require_sample_data() -> Path:
    """The sample data folder; skip the caller (fail under CI=true) when it cannot be had."""
    found = _obtained()
    if isinstance(found, str):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(found)
        pytest.skip(found, allow_module_level=True)
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
