"""DICOM data, not the network: UIDs, Part-10 file meta, the data set head parser.

The head parser walks a data set's first elements for the few values the storage path
and the registration need; full pydicom parsing stays off the hot path.
"""

from oxidicom.dicom.errors import DatasetError, DatasetMismatchError, MissingAttributeError
from oxidicom.dicom.head import MAX_DECODED_BYTES, HeadFields, HeadParser
from oxidicom.dicom.part10 import file_meta
from oxidicom.dicom.uids import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    IMPLICIT_VR_LITTLE_ENDIAN,
    NEWER_TRANSFER_SYNTAXES,
    SIEMENS_PRIVATE_STORAGE_SOP_CLASSES,
    STORAGE_SOP_CLASSES,
    TRANSFER_SYNTAXES,
    UNCOMPRESSED_TRANSFER_SYNTAXES,
    VERIFICATION_SOP_CLASS,
)

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "MAX_DECODED_BYTES",
    "NEWER_TRANSFER_SYNTAXES",
    "SIEMENS_PRIVATE_STORAGE_SOP_CLASSES",
    "STORAGE_SOP_CLASSES",
    "TRANSFER_SYNTAXES",
    "UNCOMPRESSED_TRANSFER_SYNTAXES",
    "VERIFICATION_SOP_CLASS",
    "DatasetError",
    "DatasetMismatchError",
    "HeadFields",
    "HeadParser",
    "MissingAttributeError",
    "file_meta",
]
