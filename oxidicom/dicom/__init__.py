"""DICOM data, not the network: UIDs, Part-10 file meta, the data set head parser.

The head parser walks a data set's first elements for the few values the storage path
and the registration need; full pydicom parsing stays off the hot path.
"""

from typing import TYPE_CHECKING

from oxidicom.support.lazy import lazy_exports

if TYPE_CHECKING:
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

# Imported on first use (oxidicom.support.lazy).
_WHERE = {
    "DatasetError": "oxidicom.dicom.errors",
    "DatasetMismatchError": "oxidicom.dicom.errors",
    "MissingAttributeError": "oxidicom.dicom.errors",
    "MAX_DECODED_BYTES": "oxidicom.dicom.head",
    "HeadFields": "oxidicom.dicom.head",
    "HeadParser": "oxidicom.dicom.head",
    "file_meta": "oxidicom.dicom.part10",
    "IMPLEMENTATION_CLASS_UID": "oxidicom.dicom.uids",
    "IMPLEMENTATION_VERSION_NAME": "oxidicom.dicom.uids",
    "IMPLICIT_VR_LITTLE_ENDIAN": "oxidicom.dicom.uids",
    "NEWER_TRANSFER_SYNTAXES": "oxidicom.dicom.uids",
    "SIEMENS_PRIVATE_STORAGE_SOP_CLASSES": "oxidicom.dicom.uids",
    "STORAGE_SOP_CLASSES": "oxidicom.dicom.uids",
    "TRANSFER_SYNTAXES": "oxidicom.dicom.uids",
    "UNCOMPRESSED_TRANSFER_SYNTAXES": "oxidicom.dicom.uids",
    "VERIFICATION_SOP_CLASS": "oxidicom.dicom.uids",
}
__getattr__ = lazy_exports(__name__, _WHERE)


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
