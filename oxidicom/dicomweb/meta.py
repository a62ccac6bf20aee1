"""The Part-10 header of a STOW-RS part, read as the part streams in (PS3.10 7.1).

A part of type ``application/dicom`` is a whole Part-10 file (PS3.18 8.7.3.1): 128-byte
preamble, ``DICM``, the File Meta Information group (0002,xxxx) in explicit VR little
endian, then the data set in the transfer syntax the meta names. The storage writer
takes only the data set and writes a meta group of its own, exactly as for C-STORE; this
module finds where the data set starts and the three UIDs the writer needs.

The header is small (a few hundred bytes) and is the only part of an instance ever
buffered here, up to :data:`MAX_META_LENGTH`. The group is walked element by element
until the first tag outside group 0002, rather than trusting (0002,0000): files with a
wrong group length exist, and the walk finds the same end for every correct one.
"""

from __future__ import annotations

from dataclasses import dataclass
from struct import Struct
from typing import Final

from oxidicom.dimse.commands import Status

#: Largest File Meta Information accepted (preamble included); real ones are < 1 KiB.
MAX_META_LENGTH: Final = 64 * 1024
_PREFIX: Final = 132  # preamble + "DICM"
_SHORT: Final = Struct("<HH2sH")  # group, element, VR, 2-byte length (PS3.5 7.1.2)
_LONG_LENGTH: Final = Struct("<L")
# VRs with 2 reserved bytes and a 4-byte length (PS3.5 Table 7.1-1).
_LONG_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_KEPT: Final = {0x0002: "sop_class_uid", 0x0003: "sop_instance_uid", 0x0010: "transfer_syntax_uid"}
_NAMES: Final = {
    "sop_class_uid": "MediaStorageSOPClassUID (0002,0002)",
    "sop_instance_uid": "MediaStorageSOPInstanceUID (0002,0003)",
    "transfer_syntax_uid": "TransferSyntaxUID (0002,0010)",
}


class MetaError(Exception):
    """The part is not a Part-10 file we can store: FailureReason ``status``."""

    def __init__(self, comment: str, status: int = Status.CANNOT_UNDERSTAND) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


@dataclass(frozen=True)
class FileMeta:
    """What the writer needs of the File Meta Information."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str


class MetaReader:
    """Feed the first chunks of a part; get the meta and the data set bytes after it."""

    def __init__(self) -> None:
        self._buf = bytearray()
        #: Where the walk goes on at the next feed: each element is looked at once.
        self._pos = _PREFIX
        self._values: dict[str, str] = {}

    def feed(self, chunk: bytes | bytearray | memoryview) -> tuple[FileMeta, memoryview] | None:
        """None while more bytes are needed; then the meta and the data set bytes of
        ``chunk`` that follow it. Raises :class:`MetaError`."""
        self._buf += chunk
        found = self._walk()
        if found is None:
            if len(self._buf) > MAX_META_LENGTH:
                raise MetaError(f"no data set after {MAX_META_LENGTH} bytes of file meta")
            return None
        meta, end = found
        rest = memoryview(bytes(self._buf[end:]))
        self._buf = bytearray()
        return meta, rest

    def finish(self) -> None:
        """The part ended before its data set: raise the reason."""
        if len(self._buf) < _PREFIX or self._buf[128:132] != b"DICM":
            raise MetaError("not a DICOM Part-10 file (no preamble and DICM prefix)")
        raise MetaError("the part ends inside the file meta information or has no data set")

    def _walk(self) -> tuple[FileMeta, int] | None:
        buf = self._buf
        if len(buf) < _PREFIX:
            return None
        if buf[128:132] != b"DICM":
            raise MetaError("not a DICOM Part-10 file (no preamble and DICM prefix)")
        values = self._values
        while True:
            pos = self._pos
            if len(buf) < pos + 8:
                return None
            group, element, vr, length = _SHORT.unpack_from(buf, pos)
            if group != 0x0002:
                if pos == _PREFIX:
                    raise MetaError("the Part-10 file has no file meta information")
                return self._complete(values), pos
            if bytes(vr) in _LONG_VRS:
                if len(buf) < pos + 12:
                    return None
                (length,) = _LONG_LENGTH.unpack_from(buf, pos + 8)
                start = pos + 12
            else:
                start = pos + 8
            if length == 0xFFFFFFFF or start + length > MAX_META_LENGTH:
                raise MetaError(f"file meta element (0002,{element:04X}) has a bad length")
            if len(buf) < start + length:
                return None
            name = _KEPT.get(element)
            if name is not None:
                values[name] = bytes(buf[start : start + length]).decode("latin-1").strip(" \0")
            self._pos = start + length

    @staticmethod
    def _complete(values: dict[str, str]) -> FileMeta:
        missing = [_NAMES[name] for name in _NAMES if not values.get(name)]
        if missing:
            raise MetaError(f"the file meta information lacks {', '.join(missing)}")
        return FileMeta(
            values["sop_class_uid"], values["sop_instance_uid"], values["transfer_syntax_uid"]
        )
