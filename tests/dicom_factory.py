"""Synthetic DICOM instances for tests, built with pydicom."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

STUDY_UID = "1.2.826.0.1.3680043.8.498.1"


def mr_instance(
    *,
    instance_number: int = 1,
    series_uid: str = "1.2.826.0.1.3680043.8.498.2",
    rows: int = 64,
    columns: int = 64,
    frames: int | None = None,
    pixel_bytes: bytes | None = None,
    **overrides: object,
) -> Dataset:
    """An MR instance with every attribute the CUBE path needs."""
    ds = Dataset()
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate = "20240102"
    ds.AccessionNumber = "ACC123"
    ds.Modality = "MR"
    ds.StudyDescription = "Brain w/o contrast"
    ds.SeriesDescription = "T1 axial"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "P0001"
    ds.PatientBirthDate = "19800101"
    ds.PatientSex = "F"
    ds.PatientAge = "044Y"
    ds.ProtocolName = "T1"
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 3
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if frames is not None:
        ds.NumberOfFrames = frames
    size = rows * columns * 2 * (frames or 1)
    if pixel_bytes is None:
        pixel_bytes = (bytes(range(256)) * (size // 256 + 1))[:size]
    ds.PixelData = pixel_bytes
    for keyword, value in overrides.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def with_transfer_syntax(ds: Dataset, transfer_syntax: str) -> Dataset:
    """Give ``ds`` the file meta a sender (pynetdicom) needs to pick a context."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta = meta
    return ds


def write_part10(ds: Dataset, path: Path, transfer_syntax: str = ExplicitVRLittleEndian) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return path
