# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled twin of the head parser in :mod:`oxidicom.dicom.head` (issue 21).

``_HeadState`` holds the parser's state in C fields; it is the first base of
``HeadParserC``, so the reference's methods that the compiled parser keeps (inflating,
``_incomplete``, ``_fail``, the properties) reach the same fields through their member
descriptors. Its methods are the reference's per-instance ones, line for line:
``__init__``, ``feed`` with ``_feed_bounded``, ``_span`` and ``_check_count``, ``finish``
and ``_release``. ``feed_plain`` is ``HeadParserPy._feed_plain`` with the walk under it
(``_walk``, ``_walk_implicit``, ``_walk_explicit``, ``_walk_nested``, ``_push``), over a
C pointer into the fragment instead of ``struct.unpack_from``; ``decode_values`` is the
common case of ``_decode_values`` (every value short, the default repertoire, no escape
sequence) and hands any other case to the reference.

Nothing here is a second source of truth: the kept tags, the long VRs, the limits and
the error builders come from the reference module, handed over by ``bind`` when it
selects this one (this module imports nothing of it: no import cycle). MAX_ELEMENTS is
read at each fragment, as the reference reads its global at each walk and check.

The fragment's buffer is taken once per call (``PyObject_GetBuffer``, PyBUF_SIMPLE:
bytes, bytearray, contiguous memoryview) and released before returning; the parser's
own ``_buf`` (a bytearray) is read through its pointer and resized only between walks.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport (
    PyBytes_AS_STRING,
    PyBytes_CheckExact,
    PyBytes_FromStringAndSize,
    PyBytes_GET_SIZE,
)
from cpython.unicode cimport PyUnicode_DecodeLatin1
from libc.stdint cimport int64_t, uint32_t
from libc.string cimport memchr, memcpy, memmove

import zlib

# PS3.5 7.5: item and delimiter tags; an undefined length.
cdef enum:
    LAST_TAG = 0x00200013
    ITEM = 0xFFFEE000
    ITEM_DELIMITER = 0xFFFEE00D
    SEQUENCE_DELIMITER = 0xFFFEE0DD
    # Room for the nesting of undefined lengths; ``bind`` checks MAX_DEPTH against it.
    STACK_CAPACITY = 256
    # Stack entry flags: the reference's (in_item, implicit, big_endian) tuples.
    IN_ITEM = 1
    IMPLICIT = 2
    BIG_ENDIAN = 4
    # The kept tags: at most this many (``bind`` checks).
    SLOTS_CAPACITY = 64

cdef uint32_t UNDEFINED = 0xFFFFFFFF

# -- what the reference hands over (``bind``) ---------------------------------------------

cdef object _reference = None  # the module oxidicom.dicom.head
cdef Py_ssize_t _max_value_length = 0
cdef Py_ssize_t _max_depth = 0
cdef Py_ssize_t _max_decoded_bytes = 0
cdef int _n_slots = 0
cdef uint32_t _slot_tags[SLOTS_CAPACITY]  # sorted
cdef int _slot_index[SLOTS_CAPACITY]
# The long VRs, by first byte: bit (second byte - "A") set. 1 KiB, where a 256 x 256 table
# (64 KiB) cost a cache miss per element on the receive path, whose caches are cold.
cdef uint32_t _long_vr[256]
cdef int _charset_slots[SLOTS_CAPACITY]
cdef int _n_charset_slots = 0
cdef object _head_fields = None
cdef object _decode_reference = None
cdef object _default_terms = None
cdef object _strip = None
cdef object _bad_kept = None
cdef object _not_an_item = None
cdef object _stray_delimiter = None
cdef object _too_deep = None
cdef object _over_limit = None
cdef object _dataset_error = None
cdef object _undecodable = None
cdef object _encoding_of = None
# encoding_of's last answer: an association's instances repeat their context's syntax.
cdef object _last_syntax = object()
cdef bint _last_implicit = False, _last_big_endian = False, _last_deflated = False
cdef Py_ssize_t _n_values = 0
cdef int64_t _max_span = 0


def bind(reference) -> None:
    """Take the tables, limits and error builders of the pure-Python module ``reference``.

    Called once by ``oxidicom.dicom.head`` when it selects this module.
    """
    global _reference, _max_value_length, _max_depth, _max_decoded_bytes, _n_slots
    global _n_charset_slots, _head_fields, _decode_reference, _default_terms, _strip
    global _bad_kept, _not_an_item, _stray_delimiter, _too_deep, _over_limit
    global _dataset_error, _undecodable, _encoding_of, _n_values, _max_span
    cdef int i
    if reference.MAX_DEPTH > STACK_CAPACITY:
        raise ValueError(f"MAX_DEPTH {reference.MAX_DEPTH} > {STACK_CAPACITY}: rebuild")
    slots = sorted(reference._SLOT.items())
    if len(slots) > SLOTS_CAPACITY or len(reference._CHARSET_SLOTS) > SLOTS_CAPACITY:
        raise ValueError(f"more than {SLOTS_CAPACITY} kept tags: rebuild")
    for i, (tag, slot) in enumerate(slots):
        _slot_tags[i] = tag
        _slot_index[i] = slot
    _n_slots = len(slots)
    for vr in reference._LONG_VRS:
        if not (0x41 <= vr[1] <= 0x5A):
            raise ValueError(f"long VR {vr!r} not of capital letters: rebuild")
    for i in range(256):
        _long_vr[i] = 0
    for vr in reference._LONG_VRS:
        _long_vr[vr[0]] |= 1u << (vr[1] - 0x41)
    for i, slot in enumerate(reference._CHARSET_SLOTS):
        _charset_slots[i] = slot
    _n_charset_slots = len(reference._CHARSET_SLOTS)
    _max_value_length = reference.MAX_VALUE_LENGTH
    _max_depth = reference.MAX_DEPTH
    _max_decoded_bytes = reference.MAX_DECODED_BYTES
    _head_fields = reference.HeadFields
    _decode_reference = reference._decode_values
    _default_terms = reference._DEFAULT_TERMS
    _strip = reference._STRIP
    _bad_kept = reference._bad_kept
    _not_an_item = reference._not_an_item
    _stray_delimiter = reference._stray_delimiter
    _too_deep = reference._too_deep
    _over_limit = reference._over_limit
    _dataset_error = reference.DatasetError
    _undecodable = reference.UndecodableDatasetError
    _encoding_of = reference.encoding_of
    _n_values = reference._N_SLOTS
    _max_span = reference._MAX_SPAN
    _reference = reference


# -- the walk -------------------------------------------------------------------------------


cdef struct State:
    # The parser's slots while a fragment is walked (written back at the end). Lengths and
    # what is computed from them are 64-bit: a 4-byte length added to an offset must not
    # wrap where Py_ssize_t is 32-bit (the reference's integers never do).
    int64_t want
    int64_t skip
    int64_t count
    int64_t max_elements
    uint32_t skip_tag
    bint done
    bint implicit
    bint big_endian
    int depth
    unsigned char stack[STACK_CAPACITY]


cdef inline uint32_t u16(const unsigned char* p, bint big) noexcept nogil:
    if big:
        return (<uint32_t>p[0] << 8) | p[1]
    return p[0] | (<uint32_t>p[1] << 8)


cdef inline uint32_t u32(const unsigned char* p, bint big) noexcept nogil:
    if big:
        return ((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16)
                | (<uint32_t>p[2] << 8) | p[3])
    return (p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16)
            | (<uint32_t>p[3] << 24))


cdef inline int slot_of(uint32_t tag) noexcept nogil:
    """The slot of a kept tag, or -1 (``_SLOT.get``)."""
    cdef int lo = 0
    cdef int hi = _n_slots
    cdef int mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if _slot_tags[mid] < tag:
            lo = mid + 1
        else:
            hi = mid
    if lo < _n_slots and _slot_tags[lo] == tag:
        return _slot_index[lo]
    return -1


cdef inline bint is_long_vr(const unsigned char* vr) noexcept nogil:
    """``vr in _LONG_VRS`` (the two bytes at ``vr``)."""
    cdef unsigned int bit = vr[1] - 0x41u
    return bit < 26 and (_long_vr[vr[0]] >> bit) & 1


cdef inline bint is_un(const unsigned char* vr) noexcept nogil:
    return vr[0] == 0x55 and vr[1] == 0x4E  # b"UN"


cdef int push(State* st, bint in_item, bint implicit, bint big_endian) except -1:
    """``_push``: one level more, at most MAX_DEPTH."""
    if st.depth >= _max_depth:
        raise _too_deep()
    st.stack[st.depth] = ((IN_ITEM if in_item else 0) | (IMPLICIT if implicit else 0)
                          | (BIG_ENDIAN if big_endian else 0))
    st.depth += 1
    return 0


cdef inline int keep(list values, int slot, const unsigned char* b, Py_ssize_t start,
                     Py_ssize_t stop) except -1:
    values[slot] = PyBytes_FromStringAndSize(<char*>b + start, stop - start)
    return 0


cdef Py_ssize_t walk(State* st, list values, const unsigned char* b, Py_ssize_t pos,
                     Py_ssize_t end) except -1:
    """``_walk``: complete elements of ``b[pos:end]``; where it stopped."""
    if st.depth:
        pos = walk_nested(st, b, pos, end)
        if st.depth or st.skip:
            return pos
    if st.implicit:
        return walk_implicit(st, values, b, pos, end)
    return walk_explicit(st, values, b, pos, end)


cdef Py_ssize_t walk_implicit(State* st, list values, const unsigned char* b, Py_ssize_t pos,
                              Py_ssize_t end) except -1:
    """``_walk_implicit``: top level, implicit VR little endian (PS3.5 7.1.3)."""
    cdef int64_t stop = end - 8
    cdef int64_t count = st.count
    cdef int64_t nxt, vstart, vend, length = 0
    cdef uint32_t tag = 0
    cdef int slot
    try:
        while True:
            # Fast path: elements that end inside this buffer, skipped or kept.
            while True:
                if pos > stop:
                    st.want = 8
                    return pos
                tag = (u16(b + pos, False) << 16) | u16(b + pos + 2, False)
                length = u32(b + pos + 4, False)
                if tag > LAST_TAG:
                    break
                nxt = pos + 8 + length
                if nxt > end:  # runs past the buffer, or undefined length
                    break
                slot = slot_of(tag)
                if slot >= 0:
                    if length > _max_value_length:
                        break
                    keep(values, slot, b, pos + 8, nxt)
                count += 1
                pos = nxt
            # One element that needs care.
            if tag > LAST_TAG:
                st.done = True
                return pos
            count += 1
            vstart = pos + 8
            slot = slot_of(tag)
            if slot >= 0:
                if length > _max_value_length:
                    raise _bad_kept(tag, length)
                vend = vstart + length
                if vend > end:
                    count -= 1  # walked again, whole, with the next bytes
                    st.want = 8 + length
                    return pos
                keep(values, slot, b, vstart, vend)
                pos = vend
                continue
            if length == UNDEFINED:
                st.stack[0] = IMPLICIT  # the top level: the stack is empty
                st.depth = 1
                st.count = count
                pos = walk_nested(st, b, vstart, end)
                count = st.count
                if st.depth or st.skip:
                    return pos
                continue
            st.skip = vstart + length - end
            st.skip_tag = tag
            return end
    finally:
        st.count = count


cdef Py_ssize_t walk_explicit(State* st, list values, const unsigned char* b, Py_ssize_t pos,
                              Py_ssize_t end) except -1:
    """``_walk_explicit``: top level, explicit VR little or big endian (PS3.5 7.1.2, A.3)."""
    cdef bint big = st.big_endian
    cdef int64_t stop = end - 12
    cdef int64_t count = st.count
    cdef int64_t nxt, vstart, vend, length = 0, length4 = 0
    cdef uint32_t tag
    cdef int slot
    cdef bint long_vr
    cdef const unsigned char* vr
    try:
        while True:
            # Fast path: elements that end inside this buffer, skipped or kept.
            while pos <= stop:
                tag = (u16(b + pos, big) << 16) | u16(b + pos + 2, big)
                if tag > LAST_TAG:
                    break
                vr = b + pos + 4
                if is_long_vr(vr):
                    vstart = pos + 12
                    nxt = vstart + u32(b + pos + 8, big)
                else:
                    vstart = pos + 8
                    nxt = vstart + u16(b + pos + 6, big)
                if nxt > end:  # runs past the buffer, or undefined length
                    break
                slot = slot_of(tag)
                if slot >= 0:
                    if nxt - vstart > _max_value_length:
                        break
                    keep(values, slot, b, vstart, nxt)
                count += 1
                pos = nxt
            # One element that needs care (or the last < 12 bytes of the buffer).
            if pos <= stop:
                length = u16(b + pos + 6, big)
                length4 = u32(b + pos + 8, big)
            elif pos + 8 <= end:
                length = u16(b + pos + 6, big)
                length4 = -1
            else:
                break
            tag = (u16(b + pos, big) << 16) | u16(b + pos + 2, big)
            vr = b + pos + 4
            if tag > LAST_TAG:
                st.done = True
                return pos
            count += 1
            long_vr = is_long_vr(vr)
            if long_vr:
                if length4 < 0:
                    count -= 1  # walked again, whole, with the next bytes
                    st.want = 12
                    return pos
                length = length4
                vstart = pos + 12
            else:
                vstart = pos + 8
            vend = vstart + length
            slot = slot_of(tag)
            if slot >= 0:
                if length > _max_value_length:
                    raise _bad_kept(tag, length)
                if vend > end:
                    count -= 1  # walked again, whole, with the next bytes
                    st.want = vend - pos
                    return pos
                keep(values, slot, b, vstart, vend)
                pos = vend
                continue
            if length == UNDEFINED:
                # PS3.5 6.2.2: UN of undefined length holds implicit VR LE content.
                if is_un(vr):
                    st.stack[0] = IMPLICIT
                else:
                    st.stack[0] = BIG_ENDIAN if big else 0
                st.depth = 1  # the top level: the stack is empty
                st.count = count
                pos = walk_nested(st, b, vstart, end)
                count = st.count
                if st.depth or st.skip:
                    return pos
                continue
            if vend > end:
                st.skip = vend - end
                st.skip_tag = tag
                return end
            pos = vend  # a short element in the last 12 bytes of the buffer
        st.want = 8
        return pos
    finally:
        st.count = count


cdef Py_ssize_t walk_nested(State* st, const unsigned char* b, Py_ssize_t pos,
                            Py_ssize_t end) except -1:
    """``_walk_nested``: skip the content of undefined-length elements (PS3.5 7.5, A.4)."""
    cdef int64_t count = st.count
    cdef int64_t length, vend
    cdef uint32_t tag, group, raw
    cdef unsigned char top
    cdef bint in_item, implicit, big, long_vr
    cdef const unsigned char* vr
    try:
        while st.depth:
            if pos + 8 > end:
                st.want = 8
                return pos
            top = st.stack[st.depth - 1]
            in_item = top & IN_ITEM
            implicit = top & IMPLICIT
            big = top & BIG_ENDIAN
            group = u16(b + pos, big)
            tag = (group << 16) | u16(b + pos + 2, big)
            raw = u32(b + pos + 4, big)
            length = raw
            count += 1
            if count > st.max_elements:
                raise _over_limit(f"{st.max_elements} elements")
            if not in_item:
                if tag == SEQUENCE_DELIMITER:
                    st.depth -= 1
                    pos += 8
                    continue
                if tag != ITEM:
                    raise _not_an_item(tag)
                pos += 8
                if raw == UNDEFINED:
                    push(st, True, implicit, big)
                    continue
            elif tag == ITEM_DELIMITER:
                st.depth -= 1
                pos += 8
                continue
            elif group == 0xFFFE:
                raise _stray_delimiter(tag)
            elif implicit:
                pos += 8
                if raw == UNDEFINED:
                    push(st, False, True, False)
                    continue
            else:
                # Explicit VR: the 4 bytes read as a length are the VR and a 2-byte length
                # (PS3.5 Table 7.1-2).
                vr = b + pos + 4
                long_vr = is_long_vr(vr)
                length = u16(b + pos + 6, big)
                if long_vr:
                    if pos + 12 > end:
                        count -= 1  # walked again, whole, with the next bytes
                        st.want = 12
                        return pos
                    raw = u32(b + pos + 8, big)
                    length = raw
                    pos += 12
                    if raw == UNDEFINED:
                        # PS3.5 6.2.2: UN of undefined length holds implicit VR LE.
                        if is_un(vr):
                            push(st, False, True, False)
                        else:
                            push(st, False, False, big)
                        continue
                else:
                    pos += 8
            # skip a defined-length value (item or element)
            vend = pos + length
            if vend > end:
                st.skip = vend - end
                st.skip_tag = tag
                return end
            pos = vend
        return pos
    finally:
        st.count = count


# -- the parser's state ---------------------------------------------------------------------


cdef class _HeadState:
    """The parser's state, in C fields; the first base of ``HeadParserC``.

    Public: the reference's methods that the compiled parser keeps, and the tests, read and
    write them as the reference's attributes (ints, bools, the bytearray and lists).
    """

    cdef public int64_t _want, _skip, _count, _inflated
    cdef public uint32_t _skip_tag
    cdef public bint _done, _implicit, _big_endian
    cdef public bytearray _buf
    cdef public list _values, _stack
    cdef public object _error, _result, _inflater

    def __init__(self, transfer_syntax_uid):
        global _last_syntax, _last_implicit, _last_big_endian, _last_deflated
        if transfer_syntax_uid is not _last_syntax:
            enc = _encoding_of(transfer_syntax_uid)
            _last_implicit = enc.implicit_vr
            _last_big_endian = not enc.little_endian
            _last_deflated = enc.deflated
            _last_syntax = transfer_syntax_uid
        self._implicit = _last_implicit
        self._big_endian = _last_big_endian
        self._inflater = zlib.decompressobj(-15) if _last_deflated else None
        self._inflated = 0
        self._done = False
        self._error = None
        self._result = None
        self._values = [None] * _n_values
        self._buf = bytearray()  # an incomplete element header or kept element
        self._want = 8  # bytes of _buf needed before the walker can move on
        self._skip = 0  # bytes of the current skipped value still to come
        self._skip_tag = 0
        # Undefined-length nesting: (in_item, implicit, big_endian) per level.
        self._stack = []
        self._count = 0

    def feed(self, data):
        """``HeadParserPy.feed``: consume the next fragment; return ``done``."""
        if self._done:
            return True
        try:
            if self._inflater is not None:
                self._feed_deflated(data)
            else:
                feed_bounded(self, data)
        except _dataset_error as exc:
            self._fail(exc)
        return self._done

    def finish(self):
        """``HeadParserPy.finish``: the fields, or the DatasetError."""
        if self._error is not None:
            raise self._error
        if self._result is not None:
            return self._result
        if not self._done:
            problem = self._incomplete()
            if problem is not None:
                err = _undecodable(problem)
                self._fail(err)
                raise err
            self._done = True
        release(self)
        self._result = self._decode(self._values)
        return self._result

    def _feed_bounded(self, data):
        feed_bounded(self, data)

    def _span(self):
        return span_of(self, _reference.MAX_ELEMENTS)

    def _check_count(self):
        check_count(self, _reference.MAX_ELEMENTS)

    def _release(self):
        release(self)


cdef inline int release(_HeadState p) except -1:
    p._buf = bytearray()
    p._inflater = None
    p._stack = []
    return 0


cdef int check_count(_HeadState p, int64_t max_elements) except -1:
    # Also when the walk is done: whether a head is over the limit must not depend
    # on where the fragments end.
    if p._count > max_elements:
        raise _over_limit(f"{max_elements} elements")
    return 0


cdef int64_t span_of(_HeadState p, int64_t max_elements) except? -1:
    """``_span``: bytes that ``feed_bounded`` may walk next."""
    cdef Py_ssize_t size = PyByteArray_GET_SIZE(p._buf)
    cdef int64_t pending = p._skip + (p._want - size if size else 0)
    cdef int64_t span = 8 * (max_elements - p._count + 1) + pending
    return span if span < _max_span else _max_span


cdef int feed_bounded(_HeadState p, object data) except -1:
    """``_feed_bounded``: walk ``data``, never past MAX_ELEMENTS, even inside a fragment.

    MAX_ELEMENTS is read once for the fragment (the reference reads its global at each
    span and check; nothing changes it in between)."""
    cdef int64_t max_elements = _reference.MAX_ELEMENTS
    cdef Py_ssize_t end = len(data)
    cdef int64_t span = span_of(p, max_elements)
    cdef Py_ssize_t start = 0
    if end <= span:
        walk_fragment(p, data, max_elements)
        check_count(p, max_elements)
        return 0
    # Near the cap, in spans: through the method, as the reference (rare).
    view = memoryview(data)
    while start < end and not p._done:
        p._feed_plain(view[start : start + span])
        check_count(p, max_elements)
        start += span
        span = span_of(p, max_elements)
    return 0


cdef int load(State* st, _HeadState p, int64_t max_elements) except -1:
    cdef list stack = p._stack
    cdef Py_ssize_t i
    st.want = p._want
    st.skip = p._skip
    st.skip_tag = p._skip_tag
    st.count = p._count
    st.max_elements = max_elements
    st.done = p._done
    st.implicit = p._implicit
    st.big_endian = p._big_endian
    st.depth = len(stack)
    if st.depth > STACK_CAPACITY:  # only a parser driven by another walk could
        raise ValueError("nesting beyond the compiled walk's capacity")
    for i in range(st.depth):
        in_item, implicit, big_endian = stack[i]
        st.stack[i] = ((IN_ITEM if in_item else 0) | (IMPLICIT if implicit else 0)
                       | (BIG_ENDIAN if big_endian else 0))
    return 0


cdef int store(State* st, _HeadState p, Py_ssize_t depth_before) except -1:
    cdef list stack
    cdef int i
    cdef unsigned char e
    p._want = st.want
    p._skip = st.skip
    p._skip_tag = st.skip_tag
    p._count = st.count
    p._done = st.done
    if st.depth or depth_before:
        stack = p._stack
        del stack[:]
        for i in range(st.depth):
            e = st.stack[i]
            stack.append((bool(e & IN_ITEM), bool(e & IMPLICIT), bool(e & BIG_ENDIAN)))
    return 0


cdef int append(bytearray buf, const unsigned char* src, Py_ssize_t n) except -1:
    """``buf += src[:n]``."""
    cdef Py_ssize_t size = PyByteArray_GET_SIZE(buf)
    PyByteArray_Resize(buf, size + n)
    memcpy(PyByteArray_AS_STRING(buf) + size, src, n)
    return 0


cdef int consume(bytearray buf, Py_ssize_t p) except -1:
    """``del buf[:p]``."""
    cdef Py_ssize_t size = PyByteArray_GET_SIZE(buf)
    cdef char* s = PyByteArray_AS_STRING(buf)
    memmove(s, s + p, size - p)
    PyByteArray_Resize(buf, size - p)
    return 0


cdef int feed_span(State* st, _HeadState parser, const unsigned char* data,
                   Py_ssize_t end) except -1:
    """The body of ``_feed_plain``."""
    cdef list values = parser._values
    cdef bytearray buf
    cdef Py_ssize_t off = 0, take, p, size
    cdef int64_t k, need
    while not st.done:
        if st.skip:
            k = end - off
            if k < st.skip:
                st.skip -= k
                return 0
            off += st.skip
            st.skip = 0
        buf = parser._buf
        size = PyByteArray_GET_SIZE(buf)
        if size:
            need = st.want - size
            if need > 0:
                if off >= end:
                    return 0
                take = need if need < end - off else end - off
                append(buf, data + off, take)
                off += take
                if take < need:
                    return 0
                size += take
            p = walk(st, values, <const unsigned char*>PyByteArray_AS_STRING(buf), 0, size)
            if p < size and not st.done:
                consume(buf, p)
            else:
                PyByteArray_Resize(buf, 0)
            continue
        if off >= end:
            return 0
        p = walk(st, values, data, off, end)
        if p < end and not st.done and not st.skip:
            append(buf, data + p, end - p)  # shorter than _want: bounded
        return 0
    return 0


cdef int walk_fragment(_HeadState parser, object data, int64_t max_elements) except -1:
    """The body of ``feed_plain``."""
    cdef State st
    cdef Py_buffer view
    cdef Py_ssize_t depth_before
    load(&st, parser, max_elements)
    depth_before = st.depth
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        feed_span(&st, parser, <const unsigned char*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
        store(&st, parser, depth_before)
    return 0


def feed_plain(_HeadState parser, data) -> None:
    """``HeadParserPy._feed_plain(parser, data)``, compiled: walk one span of a fragment."""
    if _reference is None:
        raise RuntimeError("oxidicom.dicom._head_c is used before bind()")
    walk_fragment(parser, data, _reference.MAX_ELEMENTS)


# -- decoding -------------------------------------------------------------------------------


cdef inline object latin1_stripped(bytes raw):
    """``raw.decode("latin-1").strip(" \\x00")``: Latin-1 maps byte b to U+00b, so
    stripping the bytes first is the same."""
    cdef const char* s = PyBytes_AS_STRING(raw)
    cdef Py_ssize_t start = 0, stop = PyBytes_GET_SIZE(raw)
    while start < stop and (s[start] == 0x20 or s[start] == 0):
        start += 1
    while stop > start and (s[stop - 1] == 0x20 or s[stop - 1] == 0):
        stop -= 1
    return PyUnicode_DecodeLatin1(<char*>s + start, stop - start, NULL)


# The last instance's values as received and as decoded, by slot: an association's
# instances repeat most of them (the patient, study and series), and a repeated one is
# given the same string again instead of a new decoding of it (which also lets the
# layout's memo of the last series compare them by identity).
cdef list _last_raw = []
cdef list _last_text = []


cdef inline bint same_bytes(object last, bytes raw):
    return last is not None and <bytes>last == raw


def decode_values(list values):
    """``_decode_values(values)``: the common case here, any other by the reference.

    Common: no value longer than MAX_DECODED_BYTES, SpecificCharacterSet absent or of the
    default repertoire, and no escape sequence in a value of a text VR or PN. In that
    case every value is Latin-1 text whatever the character set says, so a value equal
    to the last instance's in its slot is the last instance's string.
    """
    global _last_raw, _last_text
    cdef Py_ssize_t n = len(values)
    cdef Py_ssize_t i
    cdef int j
    cdef object raw, text
    cdef tuple terms
    for i in range(n):
        raw = values[i]
        if raw is not None and (not PyBytes_CheckExact(raw)
                                or PyBytes_GET_SIZE(raw) > _max_decoded_bytes):
            return _decode_reference(values)
    for j in range(_n_charset_slots):
        raw = values[_charset_slots[j]]
        if raw is not None and memchr(PyBytes_AS_STRING(raw), 0x1B, PyBytes_GET_SIZE(raw)) != NULL:
            return _decode_reference(values)
    if len(_last_raw) != n:
        _last_raw = [None] * n
        _last_text = [None] * n
    raw = values[0]
    if raw is None:
        terms = ()
    elif same_bytes(_last_raw[0], <bytes>raw):
        terms = _last_text[0]
    else:
        terms = tuple([t.strip(_strip) for t in (<bytes>raw).decode("latin-1").split("\\")])
        if not _default_terms.issuperset(terms):
            return _decode_reference(values)
        _last_raw[0], _last_text[0] = raw, terms
    fields = [terms]
    for i in range(1, n):
        raw = values[i]
        if raw is None:
            text = None
        elif same_bytes(_last_raw[i], <bytes>raw):
            text = _last_text[i]
        else:
            text = latin1_stripped(<bytes>raw)
            _last_raw[i], _last_text[i] = raw, text
        fields.append(text)
    return _head_fields(*fields)
