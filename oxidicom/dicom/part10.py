"""The Part-10 header written in front of each received data set (PS3.10 7.1, PS3.10 7.3).

128-byte zero preamble, ``DICM``, then the File Meta Information group (0002,xxxx) in
explicit VR little endian (PS3.10 Table 7.1-1, encoded per PS3.5 7.1.2), group length
first. The data set follows byte for byte in its own transfer syntax; this module writes
only the header.
"""

from functools import lru_cache
from struct import Struct
from typing import Final

from oxidicom.dicom.errors import MissingAttributeError
from oxidicom.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

_PREAMBLE: Final = bytes(128) + b"DICM"
_SHORT_HEADER: Final = Struct("<HH2sH")  # tag, VR, 2-byte length (PS3.5 Table 7.1-2)
_GROUP_LENGTH: Final = Struct("<HH2sHL")  # (0002,0000) UL, its value
# (0002,0001) FileMetaInformationVersion, OB: tag, VR, 2 reserved bytes, 4-byte length, 00 01.
_VERSION: Final = b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00\x00\x01"
_MAX_SHORT: Final = 0xFFFE  # the largest even value length a 2-byte length field holds


def _element(element: int, vr: bytes, value: str, pad: bytes, keyword: str) -> bytes:
    """One group-0002 element with a 2-byte length, padded to even length (PS3.5 7.1.1)."""
    raw = value.encode("latin-1", errors="replace")
    if len(raw) & 1:
        raw += pad
    if len(raw) > _MAX_SHORT:
        raise MissingAttributeError(
            f"{keyword} is {len(raw)} bytes long, too long for the file meta information"
        )
    return _SHORT_HEADER.pack(0x0002, element, vr, len(raw)) + raw


@lru_cache(maxsize=256)
def _head(sop_class_uid: str) -> bytes:
    """(0002,0001) and (0002,0002) MediaStorageSOPClassUID."""
    return _VERSION + _element(0x0002, b"UI", sop_class_uid, b"\x00", "SOPClassUID")


@lru_cache(maxsize=256)
def _tail(transfer_syntax_uid: str, source_ae_title: str) -> bytes:
    """(0002,0010) TransferSyntaxUID, (0002,0012), (0002,0013), (0002,0016) SourceAET."""
    parts = [
        _element(0x0010, b"UI", transfer_syntax_uid, b"\x00", "TransferSyntaxUID"),
        _element(0x0012, b"UI", IMPLEMENTATION_CLASS_UID, b"\x00", "ImplementationClassUID"),
        _element(0x0013, b"SH", IMPLEMENTATION_VERSION_NAME, b" ", "ImplementationVersionName"),
    ]
    ae = source_ae_title.strip(" \x00")
    if ae:
        parts.append(_element(0x0016, b"AE", ae, b" ", "SourceApplicationEntityTitle"))
    return b"".join(parts)


def file_meta(
    sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str, source_ae_title: str
) -> bytes:
    """Return preamble, ``DICM`` and the File Meta Information (PS3.10 7.1).

    Elements: (0002,0000) group length, (0002,0001) version ``00 01``, (0002,0002)
    MediaStorageSOPClassUID, (0002,0003) MediaStorageSOPInstanceUID, (0002,0010)
    TransferSyntaxUID, (0002,0012) ImplementationClassUID, (0002,0013)
    ImplementationVersionName and, unless the title is empty after trimming, (0002,0016)
    SourceApplicationEntityTitle (PS3.10 7.1: the calling AE title). UI values are
    padded with NUL, SH/AE with a space (PS3.5 6.2). Values are encoded as Latin-1
    (UIDs and AE titles are ASCII; anything else is replaced by ``?``).

    Raises :class:`~oxidicom.dicom.errors.DatasetError` (0xC001) for a UID longer than a
    2-byte length field can hold.
    """
    uid = sop_instance_uid.encode("latin-1", errors="replace")
    if len(uid) & 1:
        uid += b"\x00"
    # The template first: its errors (SOP class, transfer syntax) come before the UID's.
    prefix, tail = _template(sop_class_uid, transfer_syntax_uid, source_ae_title, len(uid))
    if len(uid) > _MAX_SHORT:
        raise MissingAttributeError(
            f"SOPInstanceUID is {len(uid)} bytes long, too long for the file meta information"
        )
    return prefix + uid + tail


@lru_cache(maxsize=1024)
def _template(
    sop_class_uid: str, transfer_syntax_uid: str, source_ae_title: str, uid_length: int
) -> tuple[bytes, bytes]:
    """Everything but the SOPInstanceUID's value: what comes before it (up to its
    element header) and after it. The same for every instance of an association's
    context but for the UID's (padded) length, which is part of the key."""
    head = _head(sop_class_uid)
    tail = _tail(transfer_syntax_uid, source_ae_title)
    length = len(head) + 8 + uid_length + len(tail)
    prefix = b"".join(
        (
            _PREAMBLE,
            _GROUP_LENGTH.pack(0x0002, 0x0000, b"UL", 4, length),
            head,
            _SHORT_HEADER.pack(0x0002, 0x0003, b"UI", uid_length & 0xFFFF),
        )
    )
    return prefix, tail
