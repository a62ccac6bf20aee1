"""Incremental parser of the head of a data set: the few attributes the CUBE path needs.

The receiver gets a data set as a stream of P-DATA fragments and writes it to disk as it
arrives; this parser looks at the same fragments and pulls out the attributes of
:class:`HeadFields`, all of which have tags <= (0020,0013). It stops at the first
top-level element whose tag is greater (PS3.5 7.1: elements of a data set are in
ascending tag order), or at the end of the data set.

Encodings (PS3.5 Section 7 and Annex A): implicit VR little endian (7.1.3), explicit VR
little and big endian (7.1.2, A.3), and deflated explicit VR little endian (A.5, raw
deflate, RFC 1951).

Bounded memory, whatever the input:

- Values of elements that are not kept are skipped by count (PS3.5 7.1.1): only a
  counter is kept, never the bytes, so a 50 MB private element costs nothing.
- Only an incomplete element header (at most 12 bytes) or a kept value (at most
  :data:`MAX_VALUE_LENGTH` bytes, larger is an error) is ever buffered.
- Undefined-length elements (sequences, PS3.5 7.5; encapsulated pixel data, A.4; UN of
  undefined length whose content is implicit VR little endian, 6.2.2) are skipped by
  walking their items and delimiters (7.5.2, Table 7.5-1..3), nesting at most
  :data:`MAX_DEPTH` deep. Item and delimiter tags are always tag + 4-byte length.
- Deflated data sets are inflated incrementally, at most :data:`INFLATE_STEP` bytes of
  output (from at most :data:`INFLATE_INPUT_STEP` bytes of input) at a time, and no
  more than :data:`MAX_INFLATED` bytes in all.

Bounded CPU, whatever the input: the number of elements walked before (0020,0013) is
capped by :data:`MAX_ELEMENTS`, inside a fragment as between fragments (against heads of
many tiny elements, plain or deflated, which cost CPU, not memory), and inflating by
:data:`MAX_INFLATED`: a few ms per instance at most (see the constants).

Errors: :meth:`HeadParser.feed` never raises. When the bytes cannot be decoded the parser
stops (``feed`` returns ``True``) and :meth:`HeadParser.finish` raises the
:class:`~oxidicom.dicom.errors.DatasetError` (status 0xC000).

Text (PS3.5 6.1): without SpecificCharacterSet, or with the default repertoire, values
are decoded the way pydicom decodes them (``iso8859``, i.e. Latin-1, which maps every
byte, so never an error; values with escape sequences as below). Otherwise
``pydicom.charset.convert_encodings`` names the codecs and
:func:`oxidicom.dicom.charsets.decode_text` (pydicom's ``decode_bytes``, in bounded
time) decodes, with ``TEXT_VR_DELIMS`` for SH/LO and, for PN, ``^`` and ``=`` as
delimiters that reset the character set (PS3.5 6.1.2.5.3). A value that a named charset
cannot decode falls back to replacement characters (pydicom's own fallback), then to
Latin-1. Every value has surrounding spaces and NUL removed; multi-valued values keep
their backslashes. Of a value longer than :data:`MAX_DECODED_BYTES`, only the first
bytes are decoded (:attr:`HeadFields.cut_values`), so that no value costs more CPU than
a short one, here or in the path.

Two parsers (issue 21): :class:`HeadParserPy`, this module's, is the reference;
:class:`HeadParser` is the one in use, ``HeadParserC`` when ``oxidicom/dicom/_head_c.pyx``
is built (its state in C fields, its per-instance path, its walk and its common decoding
compiled; inflating and the error messages this module's), else
``HeadParserPy`` (``OXIDICOM_NO_EXTENSIONS=1`` selects it). Both give the same fields, the
same errors and stop at the same limits (``tests/dicom/test_head_twins.py``, the
``headdiff`` fuzz target).
"""

from __future__ import annotations

import hashlib
import sys
import zlib
from struct import Struct
from typing import Final

import msgspec
from pydicom.valuerep import PN_DELIMS, TEXT_VR_DELIMS

from oxidicom.dicom.charsets import DEFAULT_ENCODING, ESC, decode_text, python_encodings
from oxidicom.dicom.errors import DatasetError, UndecodableDatasetError, tag_str
from oxidicom.dicom.uids import encoding_of
from oxidicom.support.extensions import load_compiled

#: Largest value of a kept element; a larger one is an error (the longest kept VR, LO,
#: holds 64 characters; PN 5 x 64 per component group).
MAX_VALUE_LENGTH: Final = 64 * 1024
#: Most bytes of one value that are decoded (:attr:`HeadFields.cut_values`). Above what
#: any value of the standard holds (PN: 3 groups of 64 characters, 4 bytes each in
#: UTF-8, and escape sequences), and enough for the longest field a path component
#: keeps uncut (253 characters); it bounds the CPU a value costs (benches/decode_cost.py).
MAX_DECODED_BYTES: Final = 1024
#: Deepest nesting of undefined-length sequences/items walked before giving up.
MAX_DEPTH: Final = 64
# What the walk to (0020,0013) may cost, on the event loop, whatever the peer sends
# (benches/head_walk_cost.py, benches/results/decode-cost.md). Real heads are small: the
# sample MR series have 37 and 88 elements and ~2 KB before (0020,0013), pydicom's 160
# test files at most 143 elements; a Siemens instance's ~100 KB of private data comes
# after it, in (0029,xxxx). A head over a limit gets 0xC000 (``_over_limit``), like one
# that cannot be decoded: the instance is refused, never stored without its path fields.
#
#: Most elements walked before (0020,0013), items and delimiters of undefined-length
#: sequences included (those of defined length are skipped whole, not counted). The
#: slowest element to walk (an empty OB inside an item, deflated) costs ~0.4 us on this
#: project's machine, so the cap bounds the walk to ~4 ms per instance (500 000 cost
#: 0.2 s, from 12 kB sent); still 70 times the largest real head, or undefined-length
#: references to ~2 500 instances (4 units each: item, (0008,1150), (0008,1155),
#: delimiter). Checked inside a fragment too (``_feed_bounded``).
MAX_ELEMENTS: Final = 10_000
#: Fragments are walked at most this many bytes at a time, so that an undefined length
#: (0xFFFFFFFF) can never look like a value that ends inside the fragment.
_MAX_SPAN: Final = 1 << 30
#: Most bytes inflated from a deflated data set before (0020,0013). zlib inflates a bomb
#: (1032:1) at ~3 GB/s here: 8 MiB is ~3 ms (256 MiB was 80 ms, from 261 kB sent), and
#: 4 000 times a real head; only private values before (0020,0013) could be larger.
MAX_INFLATED: Final = 8 * 1024 * 1024
#: Most bytes inflated by one call of the decompressor.
INFLATE_STEP: Final = 64 * 1024
#: Most bytes of a fragment given to the decompressor at a time (see ``_feed_deflated``).
INFLATE_INPUT_STEP: Final = 16 * 1024

_LAST_TAG: Final = 0x00200013
_UNDEFINED: Final = 0xFFFFFFFF
_ITEM: Final = 0xFFFEE000
_ITEM_DELIMITER: Final = 0xFFFEE00D
_SEQUENCE_DELIMITER: Final = 0xFFFEE0DD

#: Explicit VRs with 2 reserved bytes and a 4-byte length (PS3.5 Table 7.1-1).
_LONG_VRS: Final = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)

_LE_TAG_LEN: Final = Struct("<HHL")  # implicit element header / item header: tag, length
_BE_TAG_LEN: Final = Struct(">HHL")
_LE_EXPLICIT_LONG: Final = Struct("<HH2sHL")  # the same + the 4-byte length of long VRs
_BE_EXPLICIT_LONG: Final = Struct(">HH2sHL")
# The same with the VR as a 16-bit integer (cheaper to hash than 2 bytes).
_LE_EXPLICIT_INT: Final = Struct("<HHHH")
_BE_EXPLICIT_INT: Final = Struct(">HHHH")
_LE_EXPLICIT_LONG_INT: Final = Struct("<HHHHL")
_BE_EXPLICIT_LONG_INT: Final = Struct(">HHHHL")
_LONG_VR_CODES_LE: Final = frozenset(int.from_bytes(vr, "little") for vr in _LONG_VRS)
_LONG_VR_CODES_BE: Final = frozenset(int.from_bytes(vr, "big") for vr in _LONG_VRS)
_UN_LE: Final = int.from_bytes(b"UN", "little")
_UN_BE: Final = int.from_bytes(b"UN", "big")
_LE_U32: Final = Struct("<L")
_BE_U32: Final = Struct(">L")


class HeadFields(msgspec.Struct, frozen=True, gc=False):
    """The attributes of a data set head that the storage path and registration need.

    Decoded text, surrounding spaces and NUL removed; ``None`` when the element is
    absent, ``""`` when it is present but empty. ``specific_character_set`` holds the
    raw defined terms of (0008,0005): ``()`` when absent, ``("",)`` when present but empty.
    """

    specific_character_set: tuple[str, ...]
    sop_class_uid: str | None
    sop_instance_uid: str | None
    study_date: str | None
    accession_number: str | None
    modality: str | None
    study_description: str | None
    series_description: str | None
    patient_name: str | None
    patient_id: str | None
    patient_birth_date: str | None
    patient_sex: str | None
    patient_age: str | None
    protocol_name: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    series_number: str | None
    instance_number: str | None
    #: ``(field, digest)`` for each value longer than :data:`MAX_DECODED_BYTES`: the
    #: field holds only the text of its first bytes; ``digest`` (8 hex digits of
    #: BLAKE2b) names all its raw bytes, and marks the cut in the path.
    cut_values: tuple[tuple[str, str], ...] = ()


# Slot of each kept tag; the order of slots 1.. is the order of HeadFields' fields.
# Kind: 0 = default repertoire only (UI, DA, CS, AS, IS), 1 = SH/LO text, 2 = PN.
_KEPT: Final[tuple[tuple[int, int], ...]] = (
    (0x00080005, 0),  # SpecificCharacterSet, CS
    (0x00080016, 0),  # SOPClassUID, UI
    (0x00080018, 0),  # SOPInstanceUID, UI
    (0x00080020, 0),  # StudyDate, DA
    (0x00080050, 1),  # AccessionNumber, SH
    (0x00080060, 0),  # Modality, CS
    (0x00081030, 1),  # StudyDescription, LO
    (0x0008103E, 1),  # SeriesDescription, LO
    (0x00100010, 2),  # PatientName, PN
    (0x00100020, 1),  # PatientID, LO
    (0x00100030, 0),  # PatientBirthDate, DA
    (0x00100040, 0),  # PatientSex, CS
    (0x00101010, 0),  # PatientAge, AS
    (0x00181030, 1),  # ProtocolName, LO
    (0x0020000D, 0),  # StudyInstanceUID, UI
    (0x0020000E, 0),  # SeriesInstanceUID, UI
    (0x00200011, 0),  # SeriesNumber, IS
    (0x00200013, 0),  # InstanceNumber, IS
)
_SLOT: Final[dict[int, int]] = {tag: i for i, (tag, _kind) in enumerate(_KEPT)}
_TEXT_SLOTS: Final = tuple(i for i, (_tag, kind) in enumerate(_KEPT) if kind == 1)
_PN_SLOT: Final = next(i for i, (_tag, kind) in enumerate(_KEPT) if kind == 2)
_CHARSET_SLOTS: Final = (*_TEXT_SLOTS, _PN_SLOT)
_N_SLOTS: Final = len(_KEPT)
_SERIES_SLOT: Final = _SLOT[0x0020000E]

_STRIP: Final = " \x00"
_DEFAULT_TERMS: Final = frozenset({"", "ISO_IR 6", "ISO 2022 IR 6"})
_PN_DELIMITERS: Final = frozenset(PN_DELIMS | {0x3D})  # '^' and '='
_TEXT_DELIMITERS: Final = frozenset(TEXT_VR_DELIMS)
_FALLBACK_ENCODINGS: Final = (DEFAULT_ENCODING,)
_FIELD_NAMES: Final = HeadFields.__struct_fields__
_ALL_COMPLETE: Final = [True] * _N_SLOTS  # read only


def _over_limit(what: str) -> UndecodableDatasetError:
    """A head that costs more to walk than we spend on one (0xC000, see the limits)."""
    return UndecodableDatasetError(f"head over limit: more than {what} before (0020,0013)")


def _bad_kept(tag: int, length: int) -> UndecodableDatasetError:
    """A kept element whose value is too long to buffer, or of undefined length."""
    if length == _UNDEFINED:
        return UndecodableDatasetError(f"element {tag_str(tag)} has undefined length")
    return UndecodableDatasetError(
        f"element {tag_str(tag)} is {length} bytes long, more than {MAX_VALUE_LENGTH}"
    )


def _not_an_item(tag: int) -> UndecodableDatasetError:
    return UndecodableDatasetError(
        f"unexpected element {tag_str(tag)} in a sequence "
        "of undefined length, where an item was expected"
    )


def _stray_delimiter(tag: int) -> UndecodableDatasetError:
    return UndecodableDatasetError(
        f"unexpected delimiter {tag_str(tag)} in an item of undefined length"
    )


def _too_deep() -> UndecodableDatasetError:
    return UndecodableDatasetError(
        f"sequences nested more than {MAX_DEPTH} deep before (0020,0013)"
    )


def _digest(raw: bytes) -> str:
    """8 hex digits naming a whole raw value (BLAKE2b: C speed, whatever its length)."""
    return hashlib.blake2b(raw, digest_size=4).hexdigest()


def _decode_values(values: list[bytes | None]) -> HeadFields:
    """Turn the kept raw values into :class:`HeadFields` (PS3.5 6.1, 6.2).

    Only the first :data:`MAX_DECODED_BYTES` bytes of a longer value are decoded (its
    field and the digest of all its bytes go into ``cut_values``): what a value costs
    here and in the path is bounded, however long it is.
    """
    raws: list[bytes | None] = values
    complete: list[bool] = _ALL_COMPLETE
    cut: list[tuple[str, str]] = []
    # One C-level pass in the common case (every value short): this runs per instance.
    if max(map(len, filter(None, values)), default=0) > MAX_DECODED_BYTES:
        raws, complete = list(values), [True] * _N_SLOTS
        for i, raw in enumerate(values):
            if raw is not None and len(raw) > MAX_DECODED_BYTES:
                cut.append((_FIELD_NAMES[i], _digest(raw)))
                raws[i] = raw[:MAX_DECODED_BYTES]
                complete[i] = False
    charset_raw = raws[0]
    if charset_raw is None:
        terms: tuple[str, ...] = ()
    else:
        terms = tuple(t.strip(_STRIP) for t in charset_raw.decode("latin-1").split("\\"))
    # Default repertoire, or a value of a VR that pydicom always decodes as iso8859
    # (UI, DA, CS, AS, IS): Latin-1, which matches pydicom byte for byte.
    out = [None if r is None else r.decode("latin-1").strip(_STRIP) for r in raws]
    if terms and not _DEFAULT_TERMS.issuperset(terms):
        encodings = python_encodings(terms)
        for i in _CHARSET_SLOTS:
            raw = raws[i]
            if raw is not None:
                delimiters = _PN_DELIMITERS if i == _PN_SLOT else _TEXT_DELIMITERS
                text = decode_text(raw, encodings, delimiters, final=complete[i])
                out[i] = text.strip(_STRIP)
    else:
        # pydicom hands text VRs with escape sequences to decode_bytes even by default.
        for i in _CHARSET_SLOTS:
            raw = raws[i]
            if raw is not None and ESC in raw:
                delimiters = _PN_DELIMITERS if i == _PN_SLOT else _TEXT_DELIMITERS
                text = decode_text(raw, _FALLBACK_ENCODINGS, delimiters, final=complete[i])
                out[i] = text.strip(_STRIP)
    return HeadFields(terms, *out[1:], cut_values=tuple(cut))


class HeadParserPy:
    """Feed the data set of one C-STORE in fragments; read :class:`HeadFields` at the end.

    ``feed`` returns ``True`` once no more bytes are needed (the first top-level tag after
    (0020,0013) was seen, or the bytes were found undecodable); later calls are no-ops.
    Call :meth:`finish` then, or when the data set ended, to get the fields or the
    :class:`~oxidicom.dicom.errors.DatasetError`.
    """

    # No __slots__: the compiled parser keeps this state in the C fields of its first base
    # (``_head_c._HeadState``), which slots here would conflict with.

    def __init__(self, transfer_syntax_uid: str) -> None:
        enc = encoding_of(transfer_syntax_uid)
        self._implicit = enc.implicit_vr
        self._big_endian = not enc.little_endian
        self._inflater = zlib.decompressobj(-15) if enc.deflated else None
        self._inflated = 0
        self._done = False
        self._error: DatasetError | None = None
        self._result: HeadFields | None = None
        self._values: list[bytes | None] = [None] * _N_SLOTS
        self._buf = bytearray()  # an incomplete element header or kept element
        self._want = 8  # bytes of _buf needed before the walker can move on
        self._skip = 0  # bytes of the current skipped value still to come
        self._skip_tag = 0
        # Undefined-length nesting: (in_item, implicit, big_endian) per level.
        self._stack: list[tuple[bool, bool, bool]] = []
        self._count = 0

    #: Kept raw values -> :class:`HeadFields`; the compiled parser has its own (see the end).
    _decode = staticmethod(_decode_values)

    @property
    def done(self) -> bool:
        """True when no more bytes are needed."""
        return self._done

    @property
    def series_instance_uid(self) -> str | None:
        """SeriesInstanceUID if it was seen, even when the head as a whole is unusable
        (an error report still belongs to its series)."""
        raw = self._values[_SERIES_SLOT]
        return None if raw is None else raw.decode("latin-1").strip(" \x00")

    def feed(self, data: bytes | bytearray | memoryview) -> bool:
        """Consume the next fragment of the data set; return :attr:`done`.

        ``data`` is not kept after the call (the caller may reuse its buffer). Never raises.
        """
        if self._done:
            return True
        try:
            if self._inflater is not None:
                self._feed_deflated(data)
            else:
                self._feed_bounded(data)
        except DatasetError as exc:
            self._fail(exc)
        return self._done

    def finish(self) -> HeadFields:
        """Return the fields; the data set ended here if :attr:`done` is not yet True.

        Raises :class:`~oxidicom.dicom.errors.DatasetError` (0xC000) when the bytes seen
        cannot be decoded, including a data set that ends inside an element or inside a
        sequence of undefined length (PS3.5 7.5).
        """
        if self._error is not None:
            raise self._error
        if self._result is not None:
            return self._result
        if not self._done:
            problem = self._incomplete()
            if problem is not None:
                err = UndecodableDatasetError(problem)
                self._fail(err)
                raise err
            self._done = True
        self._release()
        self._result = self._decode(self._values)
        return self._result

    # -- internals -------------------------------------------------------------------

    def _check_count(self) -> None:
        # Also when the walk is done: whether a head is over the limit must not depend
        # on where the fragments end.
        if self._count > MAX_ELEMENTS:
            raise _over_limit(f"{MAX_ELEMENTS} elements")

    def _fail(self, exc: DatasetError) -> None:
        # The traceback's frames hold the caller's fragment (a memoryview, maybe of a
        # buffer it reuses): the error outlives the call, the fragment must not.
        exc.__traceback__ = None
        self._error = exc
        self._done = True
        self._release()

    def _release(self) -> None:
        self._buf = bytearray()
        self._inflater = None
        self._stack = []

    def _incomplete(self) -> str | None:
        """Why the data set cannot end here, or None if it can (at an element boundary)."""
        if self._skip:
            return (
                f"data set ends inside element {tag_str(self._skip_tag)}: "
                f"{self._skip} bytes of its value are missing"
            )
        if self._buf:
            return f"data set ends inside an element header or value ({len(self._buf)} bytes)"
        if self._stack:
            return "data set ends inside a sequence or item of undefined length"
        return None

    def _feed_deflated(self, data: bytes | bytearray | memoryview) -> None:
        """PS3.5 A.5: inflate in bounded steps and walk the output.

        The input goes to zlib :data:`INFLATE_INPUT_STEP` bytes at a time: each call
        that stops at :data:`INFLATE_STEP` bytes of output copies the input it has not
        used into ``unconsumed_tail``, and on a whole 16 MiB fragment that copy, once per
        64 KiB inflated, cost more than the inflating (1.2 s for a 64 KiB bomb followed
        by 15 MiB).
        """
        inflater = self._inflater
        if inflater is None or inflater.eof:
            return
        view = memoryview(data)
        for start in range(0, len(view), INFLATE_INPUT_STEP):
            chunk: bytes | memoryview = view[start : start + INFLATE_INPUT_STEP]
            while True:
                try:
                    out = inflater.decompress(chunk, INFLATE_STEP)
                except zlib.error as exc:
                    msg = f"deflated data set does not inflate: {exc}"
                    raise UndecodableDatasetError(msg) from None
                self._inflated += len(out)
                if self._inflated > MAX_INFLATED:
                    raise _over_limit(f"{MAX_INFLATED >> 20} MiB inflated")
                if out:
                    self._feed_bounded(out)
                    if self._done:
                        return
                if inflater.eof:
                    return
                chunk = inflater.unconsumed_tail
                if not chunk and len(out) < INFLATE_STEP:
                    break

    def _feed_bounded(self, data: bytes | bytearray | memoryview) -> None:
        """Walk ``data``, never past :data:`MAX_ELEMENTS` elements, even inside a fragment.

        Checking the count only between fragments let a 16 MiB fragment of 8-byte
        elements walk 2 million of them first. Every element, item and delimiter header
        is at least 8 bytes, so beyond the rest of a value being skipped and of a unit
        being buffered, a span of 8 x (n + 1) bytes starts at most n + 1 of them: spans
        that size, with the count checked after each, stop the walk within 2 elements of
        the cap. Ordinary data is walked in one span: the head ends long before.
        """
        end = len(data)
        span = self._span()
        if end <= span:
            self._feed_plain(data)
            self._check_count()
            return
        view = memoryview(data)
        start = 0
        while start < end and not self._done:
            self._feed_plain(view[start : start + span])
            self._check_count()
            start += span
            span = self._span()

    def _span(self) -> int:
        """Bytes that :meth:`_feed_bounded` may walk next (see there)."""
        pending = self._skip + (self._want - len(self._buf) if self._buf else 0)
        return min(8 * (MAX_ELEMENTS - self._count + 1) + pending, _MAX_SPAN)

    def _feed_plain(self, data: bytes | bytearray | memoryview) -> None:
        off = 0
        end = len(data)
        while not self._done:
            if self._skip:
                k = end - off
                if k < self._skip:
                    self._skip -= k
                    return
                off += self._skip
                self._skip = 0
            buf = self._buf
            if buf:
                need = self._want - len(buf)
                if need > 0:
                    if off >= end:
                        return
                    take = min(need, end - off)
                    buf += data[off : off + take]
                    off += take
                    if take < need:
                        return
                p = self._walk(buf, 0, len(buf))
                if p < len(buf) and not self._done:
                    del buf[:p]
                else:
                    buf.clear()
                continue
            if off >= end:
                return
            p = self._walk(data, off, end)
            if p < end and not self._done and not self._skip:
                self._buf += data[p:end]  # shorter than _want: bounded
            return

    def _walk(self, buf: bytes | bytearray | memoryview, pos: int, end: int) -> int:
        """Walk complete elements of ``buf[pos:end]``; return where it stopped.

        Stops at the end, at an incomplete unit (``_want`` = bytes it needs from the
        returned position), at a value to skip that runs past the end (``_skip``), or
        when done.
        """
        if self._stack:
            pos = self._walk_nested(buf, pos, end)
            if self._stack or self._skip:
                return pos
        if self._implicit:
            return self._walk_implicit(buf, pos, end)
        return self._walk_explicit(buf, pos, end)

    def _walk_implicit(self, buf: bytes | bytearray | memoryview, pos: int, end: int) -> int:
        """Top level, implicit VR little endian (PS3.5 7.1.3): tag, 4-byte length, value."""
        unpack = _LE_TAG_LEN.unpack_from
        slots = _SLOT
        values = self._values
        copy = type(buf) is not bytes  # never keep a view of the caller's buffer
        stop = end - 8
        count = self._count
        try:
            while True:
                # Fast path: elements that end inside this buffer, skipped or kept.
                while pos <= stop:
                    group, elem, length = unpack(buf, pos)
                    tag = group << 16 | elem
                    if tag > _LAST_TAG:
                        break
                    nxt = pos + 8 + length
                    if nxt > end:  # runs past the buffer, or undefined length
                        break
                    slot = slots.get(tag)
                    if slot is not None:
                        if length > MAX_VALUE_LENGTH:
                            break
                        values[slot] = bytes(buf[pos + 8 : nxt]) if copy else buf[pos + 8 : nxt]
                    count += 1
                    pos = nxt
                else:
                    break
                # One element that needs care.
                tag = group << 16 | elem
                if tag > _LAST_TAG:
                    self._done = True
                    return pos
                count += 1
                vstart = pos + 8
                if tag in slots:
                    if length > MAX_VALUE_LENGTH:
                        raise _bad_kept(tag, length)
                    vend = vstart + length
                    if vend > end:
                        count -= 1  # walked again, whole, with the next bytes
                        self._want = 8 + length
                        return pos
                    values[slots[tag]] = bytes(buf[vstart:vend])
                    pos = vend
                    continue
                if length == _UNDEFINED:
                    self._stack.append((False, True, False))
                    self._count = count
                    pos = self._walk_nested(buf, vstart, end)
                    count = self._count
                    if self._stack or self._skip:
                        return pos
                    continue
                self._skip = vstart + length - end
                self._skip_tag = tag
                return end
            self._want = 8
            return pos
        finally:
            self._count = count

    def _walk_explicit(self, buf: bytes | bytearray | memoryview, pos: int, end: int) -> int:
        """Top level, explicit VR little or big endian (PS3.5 7.1.2, A.2, A.3).

        Header: tag, VR, then a 2-byte length, or for the VRs of ``_LONG_VRS`` 2 reserved
        bytes and a 4-byte length (PS3.5 Table 7.1-1 and 7.1-2). The VR is read as a
        16-bit integer (``_LONG_VR_CODES_*``), cheaper to look up than 2 bytes.
        """
        if self._big_endian:
            unpack12 = _BE_EXPLICIT_LONG_INT.unpack_from
            unpack8 = _BE_EXPLICIT_INT.unpack_from
            long_vrs = _LONG_VR_CODES_BE
            un = _UN_BE
        else:
            unpack12 = _LE_EXPLICIT_LONG_INT.unpack_from
            unpack8 = _LE_EXPLICIT_INT.unpack_from
            long_vrs = _LONG_VR_CODES_LE
            un = _UN_LE
        slots = _SLOT
        values = self._values
        copy = type(buf) is not bytes  # never keep a view of the caller's buffer
        stop = end - 12
        count = self._count
        try:
            while True:
                # Fast path: elements that end inside this buffer, skipped or kept.
                while pos <= stop:
                    group, elem, vr, length, length4 = unpack12(buf, pos)
                    tag = group << 16 | elem
                    if tag > _LAST_TAG:
                        break
                    if vr in long_vrs:
                        vstart = pos + 12
                        nxt = vstart + length4
                    else:
                        vstart = pos + 8
                        nxt = vstart + length
                    if nxt > end:  # runs past the buffer, or undefined length
                        break
                    slot = slots.get(tag)
                    if slot is not None:
                        if nxt - vstart > MAX_VALUE_LENGTH:
                            break
                        values[slot] = bytes(buf[vstart:nxt]) if copy else buf[vstart:nxt]
                    count += 1
                    pos = nxt
                # One element that needs care (or the last < 12 bytes of the buffer).
                if pos <= stop:
                    pass  # group, elem, vr, length, length4 are those of the fast path
                elif pos + 8 <= end:
                    group, elem, vr, length = unpack8(buf, pos)
                    length4 = -1
                else:
                    break
                tag = group << 16 | elem
                if tag > _LAST_TAG:
                    self._done = True
                    return pos
                count += 1
                if vr in long_vrs:
                    if length4 < 0:
                        count -= 1  # walked again, whole, with the next bytes
                        self._want = 12
                        return pos
                    length = length4
                    vstart = pos + 12
                else:
                    vstart = pos + 8
                vend = vstart + length
                if tag in slots:
                    if length > MAX_VALUE_LENGTH:
                        raise _bad_kept(tag, length)
                    if vend > end:
                        count -= 1  # walked again, whole, with the next bytes
                        self._want = vend - pos
                        return pos
                    values[slots[tag]] = bytes(buf[vstart:vend])
                    pos = vend
                    continue
                if length == _UNDEFINED:
                    # PS3.5 6.2.2: UN of undefined length holds implicit VR LE content.
                    if vr == un:
                        self._stack.append((False, True, False))
                    else:
                        self._stack.append((False, False, self._big_endian))
                    self._count = count
                    pos = self._walk_nested(buf, vstart, end)
                    count = self._count
                    if self._stack or self._skip:
                        return pos
                    continue
                if vend > end:
                    self._skip = vend - end
                    self._skip_tag = tag
                    return end
                pos = vend  # a short element in the last 12 bytes of the buffer
            self._want = 8
            return pos
        finally:
            self._count = count

    def _walk_nested(self, buf: bytes | bytearray | memoryview, pos: int, end: int) -> int:
        """Skip the content of undefined-length elements (PS3.5 7.5, A.4, 6.2.2).

        Each level of ``_stack`` is a sequence (expecting items or the sequence
        delimiter) or an item of undefined length (expecting elements or the item
        delimiter). Returns when the stack is empty, or at a stall as in :meth:`_walk`.
        """
        stack = self._stack
        count = self._count
        try:
            while stack:
                if pos + 8 > end:
                    self._want = 8
                    return pos
                in_item, implicit, big_endian = stack[-1]
                if big_endian:
                    group, elem, length = _BE_TAG_LEN.unpack_from(buf, pos)
                else:
                    group, elem, length = _LE_TAG_LEN.unpack_from(buf, pos)
                tag = group << 16 | elem
                count += 1
                if count > MAX_ELEMENTS:
                    raise _over_limit(f"{MAX_ELEMENTS} elements")
                if not in_item:
                    if tag == _SEQUENCE_DELIMITER:
                        stack.pop()
                        pos += 8
                        continue
                    if tag != _ITEM:
                        raise _not_an_item(tag)
                    pos += 8
                    if length == _UNDEFINED:
                        self._push(True, implicit, big_endian)
                        continue
                elif tag == _ITEM_DELIMITER:
                    stack.pop()
                    pos += 8
                    continue
                elif group == 0xFFFE:
                    raise _stray_delimiter(tag)
                elif implicit:
                    pos += 8
                    if length == _UNDEFINED:
                        self._push(False, True, False)
                        continue
                else:
                    # Explicit VR: the 4 bytes just read as a length are the VR and a
                    # 2-byte length (PS3.5 Table 7.1-2); split them rather than read again
                    # (this loop is what a hostile peer makes the walk spend its time in).
                    if big_endian:
                        vr = length >> 16
                        long_vr = vr in _LONG_VR_CODES_BE
                        length &= 0xFFFF
                    else:
                        vr = length & 0xFFFF
                        long_vr = vr in _LONG_VR_CODES_LE
                        length >>= 16
                    if long_vr:
                        if pos + 12 > end:
                            count -= 1  # walked again, whole, with the next bytes
                            self._want = 12
                            return pos
                        if big_endian:
                            (length,) = _BE_U32.unpack_from(buf, pos + 8)
                        else:
                            (length,) = _LE_U32.unpack_from(buf, pos + 8)
                        pos += 12
                        if length == _UNDEFINED:
                            # PS3.5 6.2.2: UN of undefined length holds implicit VR LE.
                            if vr == (_UN_BE if big_endian else _UN_LE):
                                self._push(False, True, False)
                            else:
                                self._push(False, False, big_endian)
                            continue
                    else:
                        pos += 8
                # skip a defined-length value (item or element)
                vend = pos + length
                if vend > end:
                    self._skip = vend - end
                    self._skip_tag = tag
                    return end
                pos = vend
            return pos
        finally:
            self._count = count

    def _push(self, in_item: bool, implicit: bool, big_endian: bool) -> None:
        if len(self._stack) >= MAX_DEPTH:
            raise _too_deep()
        self._stack.append((in_item, implicit, big_endian))


def parse_head(transfer_syntax_uid: str, data: bytes | bytearray | memoryview) -> HeadFields:
    """Parse a whole data set (or its head) in one piece; raise DatasetError if undecodable."""
    parser = HeadParser(transfer_syntax_uid)
    parser.feed(data)
    return parser.finish()


def parse_head_py(transfer_syntax_uid: str, data: bytes | bytearray | memoryview) -> HeadFields:
    """:func:`parse_head` with the pure-Python parser, whichever is in use."""
    parser = HeadParserPy(transfer_syntax_uid)
    parser.feed(data)
    return parser.finish()


# The compiled twin (oxidicom/dicom/_head_c.pyx) of what runs per element and per
# instance: the state in C fields (``_HeadState``, the first base of ``HeadParserC``),
# ``__init__``, ``feed`` with the spans and the count between them, ``finish``,
# ``_feed_plain`` with the walk under it, and the common case of ``_decode_values``.
# Inflating, ``_incomplete``, ``_fail`` and the messages of the errors stay this module's,
# shared by both parsers; the compiled code takes its tables, limits and error builders
# from here (``bind``), reading MAX_ELEMENTS at each walk and check, as the code above does.
HeadParser: type[HeadParserPy] = HeadParserPy
_c = load_compiled("oxidicom.dicom._head_c")
if _c is not None:
    _c.bind(sys.modules[__name__])

    class HeadParserC(_c._HeadState, HeadParserPy):  # type: ignore[misc,name-defined]
        """:class:`HeadParserPy` with its state in C fields and its per-instance path,
        its walk and its common decoding compiled."""

        _feed_plain = _c.feed_plain
        _decode = staticmethod(_c.decode_values)

    HeadParser = HeadParserC
