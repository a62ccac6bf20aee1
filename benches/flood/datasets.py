"""The data sets the flood sends, generated once with pydicom into a cache folder.

Each data set is a folder of Part-10 files plus ``manifest.json`` (written last, so a
folder without it is regenerated) listing every file with its size and SOPInstanceUID.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.uid import CTImageStorage, generate_uid

from benches.flood import ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.dicom_factory import mr_instance, write_part10
from tests.sample_data import sample_data_dir

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class SourceFile:
    path: Path
    size: int
    sop_instance_uid: str


@dataclass(frozen=True)
class DataSet:
    name: str
    files: tuple[SourceFile, ...]

    @property
    def payload_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def limited(self, count: int | None) -> DataSet:
        """The first ``count`` files (all of them when ``count`` is None)."""
        if count is None or count >= len(self.files):
            return self
        return DataSet(self.name, self.files[:count])


def _series(folder: Path, name: str, series: int, per_series: int, **fields: Any) -> None:
    """``series`` series of ``per_series`` instances, files ``{series:02d}-{n:04d}.dcm``."""
    for index in range(series):
        series_uid = generate_uid()
        for n in range(per_series):
            ds = mr_instance(
                instance_number=n + 1,
                series_uid=series_uid,
                SeriesNumber=index + 1,
                SeriesDescription=f"{name} {index + 1}",
                **fields,
            )
            write_part10(ds, folder / f"{index:02d}-{n:04d}.dcm")


def _small(folder: Path) -> None:
    """2000 MR instances 64x64 16-bit, 10 series of 200."""
    _series(folder, "small", 10, 200)


def _ct(folder: Path) -> None:
    """600 CT instances 512x512 16-bit (512 KiB of pixels each), 3 series of 200."""
    pixels = (bytes(range(256)) * (512 * 512 * 2 // 256))[: 512 * 512 * 2]
    _series(
        folder,
        "ct",
        3,
        200,
        rows=512,
        columns=512,
        pixel_bytes=pixels,
        SOPClassUID=CTImageStorage,
        Modality="CT",
    )


def _big(folder: Path) -> None:
    """One multi-frame instance of 512 frames 512x512 16-bit: 256 MiB of pixels."""
    ds = mr_instance(rows=512, columns=512, frames=512, SeriesDescription="big")
    write_part10(ds, folder / "big.dcm")


def _real(folder: Path) -> None:
    """The two public series of shared/data (576 files), copied into the cache."""
    source = sample_data_dir()
    if source is None:
        raise SystemExit(
            "real data set: shared/data not found (set OXIDICOM_SAMPLE_DATA to its folder)"
        )
    for n, path in enumerate(sorted(source.rglob("*.dcm"))):
        shutil.copyfile(path, folder / f"{path.parent.name}-{n:04d}.dcm")


GENERATORS: dict[str, Callable[[Path], None]] = {
    "small": _small,
    "ct": _ct,
    "big": _big,
    "real": _real,
}


def _manifest(folder: Path) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    for path in sorted(folder.glob("*.dcm")):
        head = dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
        entries.append(
            {"name": path.name, "size": path.stat().st_size, "uid": str(head.SOPInstanceUID)}
        )
    return entries


def load(name: str, cache: Path) -> DataSet:
    """The data set ``name`` from ``cache``, generated there first if missing."""
    if name not in GENERATORS:
        raise SystemExit(f"unknown data set {name!r}; known: {', '.join(GENERATORS)}")
    folder = cache / name
    manifest = folder / MANIFEST
    data = json.loads(manifest.read_text()) if manifest.is_file() else None
    if data is None or data.get("version") != MANIFEST_VERSION:
        print(f"generating data set {name!r} in {folder} ...", file=sys.stderr, flush=True)
        if folder.exists():
            shutil.rmtree(folder)
        building = cache / f".{name}.partial"
        if building.exists():
            shutil.rmtree(building)
        building.mkdir(parents=True)
        GENERATORS[name](building)
        data = {"version": MANIFEST_VERSION, "files": _manifest(building)}
        (building / MANIFEST).write_text(json.dumps(data))
        os.replace(building, folder)
    files = tuple(
        SourceFile(folder / str(e["name"]), int(e["size"]), str(e["uid"])) for e in data["files"]
    )
    return DataSet(name, files)
