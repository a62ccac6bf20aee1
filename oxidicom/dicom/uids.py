"""UIDs the receiver accepts, and how each transfer syntax encodes a data set.

The tables are taken once, at import time, from pydicom's copy of PS3.6 Annex A
(``pydicom.uid.UID_dictionary``), so that a newer pydicom brings newer SOP classes and
transfer syntaxes without a code change.

Selection rules (PS3.4 Annex B, PS3.5 Section 10):

- Storage SOP classes: every entry of type "SOP Class" whose name contains "Storage",
  retired ones included (a retired class can still be sent by an old modality), minus
  the service classes that are not the Storage Service Class: Storage Commitment
  Push/Pull Model (PS3.4 Annex J) and Media Storage Directory Storage (the DICOMDIR,
  a PS3.10 media object with no Patient/Study/Series identity, not listed in PS3.4
  Table B.5-1). Plus three private Siemens classes that real scanners send.
- Transfer syntaxes: every entry of type "Transfer Syntax", retired ones included (a
  data set in a retired transfer syntax is still stored byte for byte), minus the two
  retired entries that are not data-set encodings at all: RFC 2557 MIME encapsulation
  (``1.2.840.10008.1.2.6.1``) and XML Encoding (``1.2.840.10008.1.2.6.2``), PS3.5
  Annex A.
"""

from typing import Final, NamedTuple

from pydicom.uid import UID_dictionary

VERIFICATION_SOP_CLASS: Final = "1.2.840.10008.1.1"

IMPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN: Final = "1.2.840.10008.1.2.2"
JPIP_REFERENCED_DEFLATE: Final = "1.2.840.10008.1.2.4.95"
JPIP_HTJ2K_REFERENCED_DEFLATE: Final = "1.2.840.10008.1.2.4.205"
PAPYRUS3_IMPLICIT_VR_LITTLE_ENDIAN: Final = "1.2.840.10008.1.20"

#: Private Siemens storage classes (CSA Non-Image, Syngo Non-Image, CSA/MR spectroscopy).
SIEMENS_PRIVATE_STORAGE_SOP_CLASSES: Final = frozenset(
    {"1.3.12.2.1107.5.99.3.11", "1.3.12.2.1107.5.9.1", "1.3.12.2.1107.5.99.3.10"}
)

_NOT_STORAGE_SOP_CLASSES: Final = frozenset(
    {
        "1.2.840.10008.1.3.10",  # Media Storage Directory Storage (DICOMDIR)
        "1.2.840.10008.1.20.1",  # Storage Commitment Push Model SOP Class
        "1.2.840.10008.1.20.2",  # Storage Commitment Pull Model SOP Class (retired)
    }
)

_NOT_DATASET_ENCODINGS: Final = frozenset(
    {
        "1.2.840.10008.1.2.6.1",  # RFC 2557 MIME encapsulation (retired)
        "1.2.840.10008.1.2.6.2",  # XML Encoding (retired)
    }
)


def _storage_sop_classes() -> frozenset[str]:
    standard = {
        uid
        for uid, (name, kind, *_rest) in UID_dictionary.items()
        if kind == "SOP Class"
        and "Storage" in name
        and "Storage Commitment" not in name
        and "Storage Management" not in name
        and uid not in _NOT_STORAGE_SOP_CLASSES
    }
    return frozenset(standard | SIEMENS_PRIVATE_STORAGE_SOP_CLASSES)


#: Transfer syntaxes standardised after the pydicom release we depend on (PS3.5 2024-2025).
#: Listed here so that what we accept does not depend on which library registered them
#: first: pynetdicom adds these same four to pydicom's table when it is imported.
NEWER_TRANSFER_SYNTAXES: Final = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression",
}


def _transfer_syntaxes() -> frozenset[str]:
    from_pydicom = {
        uid
        for uid, (_name, kind, *_rest) in UID_dictionary.items()
        if kind == "Transfer Syntax" and uid not in _NOT_DATASET_ENCODINGS
    }
    return frozenset(from_pydicom | NEWER_TRANSFER_SYNTAXES.keys())


#: Standard Storage SOP classes (PS3.4 Table B.5-1, retired ones too) + private Siemens.
STORAGE_SOP_CLASSES: Final[frozenset[str]] = _storage_sop_classes()

#: Every standard transfer syntax that encodes a data set (PS3.5 Section 10, Annex A).
TRANSFER_SYNTAXES: Final[frozenset[str]] = _transfer_syntaxes()

#: Native little endian, PS3.5 A.1 and A.2.
UNCOMPRESSED_TRANSFER_SYNTAXES: Final = frozenset(
    {IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN}
)

#: ``"2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/FNNDSC/oxidicom/python").int)``
#: computed once (PS3.5 B.2, UUID-derived UID); a literal so that it never changes.
IMPLEMENTATION_CLASS_UID: Final = "2.25.61658959080235557711433633840596131050"
#: PS3.7 D.3.3.2.3, at most 16 characters of the SH repertoire.
IMPLEMENTATION_VERSION_NAME: Final = "OXIDICOM_PY_01"


class DatasetEncoding(NamedTuple):
    """How the data set of a transfer syntax is encoded (PS3.5 Section 7, Section 10)."""

    implicit_vr: bool
    little_endian: bool
    deflated: bool


IMPLICIT_LE: Final = DatasetEncoding(implicit_vr=True, little_endian=True, deflated=False)
EXPLICIT_LE: Final = DatasetEncoding(implicit_vr=False, little_endian=True, deflated=False)
EXPLICIT_BE: Final = DatasetEncoding(implicit_vr=False, little_endian=False, deflated=False)
DEFLATED_EXPLICIT_LE: Final = DatasetEncoding(implicit_vr=False, little_endian=True, deflated=True)

_ENCODINGS: Final[dict[str, DatasetEncoding]] = {
    IMPLICIT_VR_LITTLE_ENDIAN: IMPLICIT_LE,  # PS3.5 A.1
    PAPYRUS3_IMPLICIT_VR_LITTLE_ENDIAN: IMPLICIT_LE,  # retired, implicit VR LE by definition
    EXPLICIT_VR_BIG_ENDIAN: EXPLICIT_BE,  # PS3.5 A.3 (retired)
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: DEFLATED_EXPLICIT_LE,  # PS3.5 A.5
    JPIP_REFERENCED_DEFLATE: DEFLATED_EXPLICIT_LE,  # PS3.5 A.6, data set as in A.5
    JPIP_HTJ2K_REFERENCED_DEFLATE: DEFLATED_EXPLICIT_LE,  # PS3.5 A.6, data set as in A.5
}


def encoding_of(transfer_syntax_uid: str) -> DatasetEncoding:
    """Return how a data set in ``transfer_syntax_uid`` is encoded.

    Implicit VR little endian for ``1.2.840.10008.1.2`` (PS3.5 A.1); explicit VR big
    endian for ``1.2.840.10008.1.2.2`` (A.3); deflated explicit VR little endian for
    ``1.2.840.10008.1.2.1.99`` (A.5) and the JPIP Referenced Deflate syntaxes (A.6);
    every other transfer syntax, native or encapsulated, is explicit VR little endian
    (A.2, A.4). Trailing NUL padding of the UID (PS3.5 9.1) is ignored.
    """
    enc = _ENCODINGS.get(transfer_syntax_uid)
    if enc is None:
        enc = _ENCODINGS.get(transfer_syntax_uid.rstrip("\x00 "), EXPLICIT_LE)
    return enc
