# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of the command-set codec of :mod:`oxidicom.dimse.commands`.

``decode_command`` and ``encode_response`` give what the pure-Python functions give:
the same :class:`Command`, the same bytes, the same :class:`CommandError` messages.
The pure-Python code is the reference; the differential tests feed both. Inputs off
the fast path (a buffer that is not plain bytes, an argument of an unusual type, a
number out of range) are handed to the pure-Python function itself, so that even
their errors are its errors, word for word.
"""

from cpython.buffer cimport (
    PyBUF_FULL_RO,
    PyBuffer_Release,
    PyObject_CheckBuffer,
    PyObject_GetBuffer,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.long cimport PyLong_Check
from libc.string cimport memcpy, strcmp

from oxidicom.dimse.commands import (
    NO_DATASET,
    Command,
    CommandError,
    decode_command_py,
    encode_response_py,
)


cdef extern from "Python.h":
    bint PyUnicode_Check(object)
    int PyUnicode_KIND(object)
    int PyUnicode_1BYTE_KIND
    bint PyUnicode_IS_ASCII(object)
    void *PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    object PyUnicode_DecodeLatin1(const char *s, Py_ssize_t size, const char *errors)


cdef unsigned int _NO_DATASET = NO_DATASET
cdef unsigned int _C_CANCEL_RQ = 0x0FFF


cdef inline unsigned int _u16(const unsigned char *p) noexcept nogil:
    return p[0] | (p[1] << 8)


cdef inline unsigned int _u32(const unsigned char *p) noexcept nogil:
    return p[0] | (p[1] << 8) | (p[2] << 16) | (<unsigned int>p[3] << 24)


cdef inline bint _is_us(unsigned int element) noexcept nogil:
    # commands._US_ELEMENTS: CommandField, MessageID, MessageIDBeingRespondedTo,
    # Priority, CommandDataSetType, Status, MoveOriginatorMessageID.
    return (
        element == 0x0100 or element == 0x0110 or element == 0x0120 or element == 0x0700
        or element == 0x0800 or element == 0x0900 or element == 0x1031
    )


cdef inline object _text(const unsigned char *p, Py_ssize_t n):
    # commands._text: Latin-1, stripped of NULs and spaces at both ends. Latin-1 maps
    # each byte to the code point of the same value, so stripping the bytes first is
    # the same as stripping the text after.
    cdef Py_ssize_t first = 0
    while first < n and (p[first] == 0 or p[first] == 0x20):
        first += 1
    while n > first and (p[n - 1] == 0 or p[n - 1] == 0x20):
        n -= 1
    return PyUnicode_DecodeLatin1(<const char *>p + first, n - first, NULL)


cdef object _decode(const unsigned char *p, Py_ssize_t end):
    cdef Py_ssize_t offset = 0
    cdef Py_ssize_t start
    cdef unsigned int group, element, number
    cdef unsigned long long length
    cdef long command_field = -1, message_id = -1, dataset_type = -1, priority = -1
    affected_class = affected_instance = requested_class = move_originator = None
    while offset < end:
        if end - offset < 8:
            raise CommandError(f"command set ends inside an element header at byte {offset}")
        group = _u16(p + offset)
        element = _u16(p + offset + 2)
        length = _u32(p + offset + 4)
        offset += 8
        if length > <unsigned long long>(end - offset):
            raise CommandError(f"element (0000,{element:04X}) overruns the command set")
        if group != 0:
            raise CommandError(f"element ({group:04X},{element:04X}) is not in group 0000")
        start = offset
        offset += <Py_ssize_t>length
        if _is_us(element):
            if length != 2:
                raise CommandError(f"US element (0000,{element:04X}) has length {length}")
            number = _u16(p + start)
            if element == 0x0100:
                command_field = number
            elif element == 0x0110:
                message_id = number
            elif element == 0x0800:
                dataset_type = number
            elif element == 0x0700:
                priority = number
        elif element == 0x0002:
            affected_class = _text(p + start, offset - start)
        elif element == 0x1000:
            affected_instance = _text(p + start, offset - start)
        elif element == 0x0003:
            requested_class = _text(p + start, offset - start)
        elif element == 0x1030:
            move_originator = _text(p + start, offset - start)
    if command_field < 0:
        raise CommandError("command set has no CommandField (0000,0100)")
    if dataset_type < 0:
        raise CommandError("command set has no CommandDataSetType (0000,0800)")
    if message_id < 0:
        if command_field == _C_CANCEL_RQ:
            message_id = 0  # C-CANCEL-RQ carries MessageIDBeingRespondedTo instead
        else:
            raise CommandError("command set has no MessageID (0000,0110)")
    return Command(
        command_field,
        message_id,
        dataset_type != _NO_DATASET,
        affected_class,
        affected_instance,
        requested_class,
        None if priority < 0 else priority,
        move_originator,
    )


def decode_command(data):
    """Decode a request command set; raise :class:`CommandError` when it is unusable."""
    cdef Py_buffer view
    cdef bint plain
    if not PyObject_CheckBuffer(data):
        return decode_command_py(data)  # its TypeError, in its words
    PyObject_GetBuffer(data, &view, PyBUF_FULL_RO)
    try:
        # bytes, bytearray and memoryviews of unsigned bytes: what the assembler
        # passes. Anything else (signed or wider items, strides) is the reference's.
        plain = (
            view.ndim == 1
            and view.itemsize == 1
            and view.suboffsets == NULL
            and (view.strides == NULL or view.strides[0] == 1)
            and (view.format == NULL or strcmp(view.format, b"B") == 0)
        )
        if plain:
            return _decode(<const unsigned char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    return decode_command_py(data)


cdef inline bint _us_value(object value):
    return PyLong_Check(value) and 0 <= value <= 0xFFFF


cdef inline bint _one_byte_text(object text):
    # A str whose characters are all below 256 (its bytes are its Latin-1 encoding).
    return PyUnicode_Check(text) and PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND


cdef inline Py_ssize_t _put_header(char *out, unsigned int element, Py_ssize_t length) noexcept:
    cdef unsigned char *p = <unsigned char *>out
    p[0] = 0
    p[1] = 0
    p[2] = element & 0xFF
    p[3] = element >> 8
    p[4] = length & 0xFF
    p[5] = (length >> 8) & 0xFF
    p[6] = (length >> 16) & 0xFF
    p[7] = (length >> 24) & 0xFF
    return 8


cdef inline Py_ssize_t _put_us(char *out, unsigned int element, unsigned int value) noexcept:
    _put_header(out, element, 2)
    out[8] = <char>(value & 0xFF)
    out[9] = <char>(value >> 8)
    return 10


cdef inline Py_ssize_t _put_text(
    char *out, unsigned int element, const char *text, Py_ssize_t n, char pad
) noexcept:
    cdef Py_ssize_t padded = n + (n & 1)
    _put_header(out, element, padded)
    memcpy(out + 8, text, n)
    if n & 1:
        out[8 + n] = pad
    return 8 + padded


def encode_response(
    command_field,
    message_id_being_responded_to,
    status,
    *,
    affected_sop_class_uid=None,
    affected_sop_instance_uid=None,
    error_comment=None,
):
    """A response command set with its group length, elements in ascending tag order.

    For C-STORE-RSP (PS3.7 Table 9.3-2) and C-ECHO-RSP (Table 9.3-13) the
    mandatory elements are the group length, AffectedSOPClassUID, CommandField,
    MessageIDBeingRespondedTo, CommandDataSetType and Status, plus
    AffectedSOPInstanceUID for C-STORE.
    """
    cdef Py_ssize_t class_length = 0, instance_length = 0, comment_length = 0
    cdef Py_ssize_t body, offset
    cdef const char *class_text = NULL
    cdef const char *instance_text = NULL
    cdef const char *comment_text = NULL
    cdef char *out
    cdef bint comment = False
    # The fast path: numbers in range, UIDs of Latin-1 characters and an ASCII comment,
    # whose encodings (latin-1 / ascii with "replace") are then their own characters.
    if not (
        _us_value(command_field)
        and _us_value(message_id_being_responded_to)
        and _us_value(status)
        and (affected_sop_class_uid is None or _one_byte_text(affected_sop_class_uid))
        and (affected_sop_instance_uid is None or _one_byte_text(affected_sop_instance_uid))
        and (
            error_comment is None
            or (PyUnicode_Check(error_comment) and PyUnicode_IS_ASCII(error_comment))
        )
    ):
        return encode_response_py(
            command_field,
            message_id_being_responded_to,
            status,
            affected_sop_class_uid=affected_sop_class_uid,
            affected_sop_instance_uid=affected_sop_instance_uid,
            error_comment=error_comment,
        )
    body = 40  # CommandField, MessageIDBeingRespondedTo, CommandDataSetType, Status
    if affected_sop_class_uid is not None:
        class_text = <const char *>PyUnicode_DATA(affected_sop_class_uid)
        class_length = PyUnicode_GET_LENGTH(affected_sop_class_uid)
        body += 8 + class_length + (class_length & 1)
    if error_comment is not None and PyUnicode_GET_LENGTH(error_comment):
        comment = True
        comment_text = <const char *>PyUnicode_DATA(error_comment)
        comment_length = min(PyUnicode_GET_LENGTH(error_comment), 64)
        body += 8 + comment_length + (comment_length & 1)
    if affected_sop_instance_uid is not None:
        instance_text = <const char *>PyUnicode_DATA(affected_sop_instance_uid)
        instance_length = PyUnicode_GET_LENGTH(affected_sop_instance_uid)
        body += 8 + instance_length + (instance_length & 1)
    if body > 0xFFFFFFFF:
        # Past what the group length can say: the reference's struct.error.
        return encode_response_py(
            command_field,
            message_id_being_responded_to,
            status,
            affected_sop_class_uid=affected_sop_class_uid,
            affected_sop_instance_uid=affected_sop_instance_uid,
            error_comment=error_comment,
        )
    result = PyBytes_FromStringAndSize(NULL, 12 + body)
    out = PyBytes_AS_STRING(result)
    offset = _put_header(out, 0x0000, 4)
    out[8] = <char>(body & 0xFF)
    out[9] = <char>((body >> 8) & 0xFF)
    out[10] = <char>((body >> 16) & 0xFF)
    out[11] = <char>((body >> 24) & 0xFF)
    offset = 12
    if class_text != NULL:
        offset += _put_text(out + offset, 0x0002, class_text, class_length, 0)
    offset += _put_us(out + offset, 0x0100, command_field)
    offset += _put_us(out + offset, 0x0120, message_id_being_responded_to)
    offset += _put_us(out + offset, 0x0800, _NO_DATASET)
    offset += _put_us(out + offset, 0x0900, status)
    if comment:
        offset += _put_text(out + offset, 0x0902, comment_text, comment_length, 0x20)
    if instance_text != NULL:
        offset += _put_text(out + offset, 0x1000, instance_text, instance_length, 0)
    return result
