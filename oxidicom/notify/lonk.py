"""LONK, the Light Oxidicom NotifiKations: NATS subjects and payloads (CONTRACT section 4).

Pure encoding. The consumer is CUBE's ``pacsfiles/lonk.py`` (nats-py), which builds the same
subject from the PACS name and SeriesInstanceUID a client subscribes to and decodes the first
byte of each payload:

========  ====================================================================
done      ``0x00``
progress  ``0x01`` then the count of files stored so far, unsigned 32-bit little endian
error     ``0x02`` then a UTF-8 message
========  ====================================================================
"""

from __future__ import annotations

import struct
from typing import Final

DONE: Final = b"\x00"
PROGRESS: Final = 0x01
ERROR: Final = 0x02
#: The series part of the subject of an error whose instance has no SeriesInstanceUID.
UNKNOWN_SERIES: Final = "UNKNOWN"

_PROGRESS = struct.Struct("<BI")
_SUBJECT_TABLE: Final = str.maketrans({" ": "_", ".": "_", "*": "_", ">": "_", "\x00": None})


def subject_part(value: str) -> str:
    """NUL removed; each of space ``.`` ``*`` ``>`` replaced by ``_`` (as CUBE does)."""
    return value.translate(_SUBJECT_TABLE)


def subject_of(root_subject: str, pacs_name: str, series_instance_uid: str | None) -> str:
    """``{root}.{pacs}.{SeriesInstanceUID}``; ``UNKNOWN`` when the UID is missing or empty.

    ``pacs_name`` is the calling AE title (trimmed), the name CUBE's clients subscribe with.
    """
    # An empty token would make the subject invalid: never send one.
    pacs = subject_part(pacs_name) or "_"
    series = subject_part(series_instance_uid or "") or UNKNOWN_SERIES
    return f"{root_subject}.{pacs}.{series}"


def progress(count: int) -> bytes:
    """A progress message: ``count`` files of the series are stored (0 <= count < 2**32)."""
    return _PROGRESS.pack(PROGRESS, count)


def error(message: str) -> bytes:
    """An error message; the text is UTF-8 (unencodable characters replaced)."""
    return bytes((ERROR,)) + message.encode("utf-8", errors="replace")


def done() -> bytes:
    """The last message of a series in an association."""
    return DONE


_KINDS: Final = {0x00: "done", PROGRESS: "progress", ERROR: "error"}


def kind_of(payload: bytes) -> str:
    """``done``, ``progress`` or ``error``: what a payload is (for metrics)."""
    return _KINDS.get(payload[0], "unknown") if payload else "unknown"
