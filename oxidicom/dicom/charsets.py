"""Text values decoded with their SpecificCharacterSet (PS3.5 6.1), as pydicom decodes them.

The rules are pydicom's ``decode_bytes`` (PS3.5 6.1.2.4, 6.1.2.5): a value is split
before each ESC; the part before the first escape sequence is decoded with the first
encoding, each other part with the encoding its escape sequence names (pydicom's
``CODES_TO_ENCODINGS``), if the data set declared it; a delimiter (``^`` and ``=`` in
PN, control characters in SH/LO) switches back to the first encoding. Bytes that an
encoding cannot decode become replacement characters; an escape sequence that names no
declared encoding leaves its part to the first encoding, with replacement characters.
tests/dicom/test_charsets.py checks that this gives pydicom's text for every value.

It is pydicom's function re-done for bounded cost, since a data set controls its input:

- pydicom logs a warning (and raises a Python warning) for each part of a value that it
  cannot decode: a 64 KiB value of 21,845 unknown escape sequences made 21,845 log
  lines, and about 0.2 s of CPU, per element. Here nothing is logged.
- pydicom looks for a delimiter byte by byte in Python; here a regular expression does.
- The caller decodes only the first bytes of a long value (``final=False``: the value
  goes on after ``raw``), and an incomplete character at the end of them is left out
  instead of turning the whole last part into replacement characters.
"""

from __future__ import annotations

import codecs
import re
import warnings
from functools import lru_cache
from typing import Final

from pydicom.charset import CODES_TO_ENCODINGS, convert_encodings, handled_encodings

ESC: Final = b"\x1b"
#: pydicom's default encoding (``pydicom.charset.default_encoding``): Latin-1, any byte.
DEFAULT_ENCODING: Final = "iso8859"
_FALLBACK_ENCODINGS: Final = (DEFAULT_ENCODING,)
#: pydicom's split: the part before the first ESC, then each ESC and what follows it.
_PARTS: Final = re.compile(b"(^[^\x1b]+|\x1b[^\x1b]*)")
_FOUR_BYTE_ESCAPES: Final = (b"\x1b$(", b"\x1b$)")
_LONGEST_ESCAPE: Final = 4


@lru_cache(maxsize=64)
def python_encodings(terms: tuple[str, ...]) -> tuple[str, ...]:
    """Python codecs for the defined terms of SpecificCharacterSet (PS3.3 C.12.1.1.2)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encodings = convert_encodings(list(terms))
    except Exception:  # pydicom in RAISE mode, or anything a codec lookup throws
        return _FALLBACK_ENCODINGS
    return tuple(encodings) or _FALLBACK_ENCODINGS


@lru_cache(maxsize=16)
def _delimiter_pattern(delimiters: frozenset[int]) -> re.Pattern[bytes]:
    return re.compile(b"[" + b"".join(re.escape(bytes([d])) for d in sorted(delimiters)) + b"]")


def decode_text(
    raw: bytes, encodings: tuple[str, ...], delimiters: frozenset[int], *, final: bool = True
) -> str:
    """``raw`` as text (pydicom's ``decode_bytes``); never raises.

    ``final=False``: ``raw`` is the beginning of a longer value; a character cut at its
    end is left out.
    """
    if not final:
        # An escape sequence cut at the end switches to nothing yet: leave it out.
        esc = raw.rfind(ESC, max(0, len(raw) - _LONGEST_ESCAPE))
        if esc >= 0:
            raw = raw[:esc]
    try:
        if ESC not in raw:
            return _decode(raw, encodings[0], final)
        parts = _PARTS.findall(raw)
        last = len(parts) - 1
        pattern = _delimiter_pattern(delimiters)
        return "".join(
            [_decode_part(p, encodings, pattern, final or i < last) for i, p in enumerate(parts)]
        )
    except Exception:  # an unknown or odd codec named by the data set
        try:
            return raw.decode(encodings[0], errors="replace")
        except Exception:
            return raw.decode("latin-1")


def _decode(raw: bytes, encoding: str, final: bool) -> str:
    """Strict, else with replacement characters; an unknown codec is the default one."""
    try:
        return _decode_with(raw, encoding, final, "strict")
    except LookupError:
        return _decode_with(raw, DEFAULT_ENCODING, final, "strict")
    except UnicodeError:
        return _decode_with(raw, encoding, final, "replace")


def _decode_with(raw: bytes, encoding: str, final: bool, errors: str) -> str:
    if final:
        return raw.decode(encoding, errors)
    # Holds back an incomplete multi-byte character at the end instead of failing on it.
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    return str(decoder.decode(raw, final=False))


def _decode_part(
    part: bytes, encodings: tuple[str, ...], delimiter: re.Pattern[bytes], final: bool
) -> str:
    """One part of a value, before any ESC or from one ESC to the next (PS3.5 6.1.2.5)."""
    first = encodings[0]
    try:
        if not part.startswith(ESC):
            return _decode_with(part, first, final, "strict")
        length = 4 if part.startswith(_FOUR_BYTE_ESCAPES) else 3
        encoding = CODES_TO_ENCODINGS.get(part[:length], "")
        if encoding not in encodings and encoding != DEFAULT_ENCODING:
            # An escape sequence to an encoding the data set did not declare.
            return _decode_with(part, first, final, "replace")
        if encoding in handled_encodings:
            return _decode_with(part, encoding, final, "strict")  # the codec reads the ESC
        text = part[length:]
        found = delimiter.search(text)
        if found is None:
            return _decode_with(text, encoding, final, "strict")
        # A delimiter returns to the first encoding (PS3.5 6.1.2.5.3).
        index = found.start()
        return text[:index].decode(encoding) + _decode_with(text[index:], first, final, "strict")
    except UnicodeError:
        return _decode_with(part, first, final, "replace")
