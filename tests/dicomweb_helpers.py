"""Part-10 bytes and multipart bodies for the STOW-RS tests, made by hand."""

from __future__ import annotations

import io
import uuid

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from tests.dicom_factory import write_part10


def part10(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    """``ds`` as a Part-10 file (preamble, DICM, file meta, data set)."""
    buffer = io.BytesIO()
    write_part10(ds, buffer, transfer_syntax)  # type: ignore[arg-type]
    return buffer.getvalue()


def multipart(
    parts: list[bytes], boundary: str | None = None, part_type: str = "application/dicom"
) -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart/related request of ``parts``."""
    boundary = boundary or uuid.uuid4().hex
    chunks = []
    for part in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode())
        chunks.append(part)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    content_type = f'multipart/related; type="application/dicom"; boundary="{boundary}"'
    return b"".join(chunks), content_type
