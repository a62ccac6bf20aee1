# cython: language_level=3
"""Compiled twin of what :mod:`oxidicom.storage.layout` does for every stored instance
(issue 21): ``check_required``, ``series_dir`` and ``instance_file_name``.

Each is the common case of the reference, line for line, and hands any other case to the
reference itself: ``check_required`` answers here only when every required attribute is
present and the study's date was seen valid before (the reference's own set of them,
read at each call);
``series_dir`` compares the inputs with the last series' and otherwise asks the
reference's cached ``_series_dir``; ``instance_file_name`` builds the name of an
instance number of ASCII digits and a UID of digits and dots, nothing cut, within 255
bytes. The reference module hands over what they need (``bind``): this module imports
nothing of it. The head's fields are read at their offsets (``oxidicom/support/_slots.pxd``)
when they are exactly a ``HeadFields``.
"""

import inspect

from cpython.object cimport Py_EQ, PyObject_RichCompareBool
from cpython.unicode cimport PyUnicode_Check

from oxidicom.support._slots cimport read_slot, slot_offset

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    const unsigned char* PyUnicode_1BYTE_DATA(object o)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    unsigned char* PyUnicode_1BYTE_DATA_W "PyUnicode_1BYTE_DATA"(object o)

from libc.string cimport memcpy

cdef object _reference = None  # the module oxidicom.storage.layout
cdef object _check_required = None
cdef object _series_dir = None
cdef object _instance_file_name = None
cdef Py_ssize_t _max_component = 0
# The last series folder made and its inputs (the reference's _last_series_dir).
cdef tuple _last_inputs = ()
cdef object _last_dir = ""
cdef object _HeadFields = None
# The offsets of HeadFields' fields read here; series_dir's inputs in their order.
cdef Py_ssize_t _study_instance_uid, _series_instance_uid, _sop_instance_uid
cdef Py_ssize_t _cut_values, _patient_id, _study_date, _instance_number
cdef Py_ssize_t[10] _series_inputs
_SERIES_INPUTS = (
    "patient_id",
    "patient_name",
    "patient_birth_date",
    "study_description",
    "accession_number",
    "study_date",
    "series_number",
    "series_description",
    "series_instance_uid",
    "cut_values",
)


def bind(reference) -> None:
    """Take the slow paths and tables of the pure-Python module ``reference``."""
    global _reference, _check_required, _series_dir, _instance_file_name
    global _max_component, _HeadFields, _study_instance_uid, _series_instance_uid
    global _sop_instance_uid, _cut_values, _patient_id, _study_date, _instance_number
    if reference._UID_CHARS != "0123456789.":
        raise ValueError("the UID characters changed: rebuild")
    if tuple(inspect.signature(reference._series_dir).parameters)[1:] != _SERIES_INPUTS:
        raise ValueError("_series_dir's inputs changed: change _SERIES_INPUTS")
    _check_required = reference.check_required_py
    _series_dir = reference._series_dir
    _instance_file_name = reference.instance_file_name_py
    _max_component = reference.MAX_COMPONENT
    _reference = reference
    _HeadFields = reference.HeadFields
    _study_instance_uid = slot_offset(_HeadFields, "study_instance_uid")
    _series_instance_uid = slot_offset(_HeadFields, "series_instance_uid")
    _sop_instance_uid = slot_offset(_HeadFields, "sop_instance_uid")
    _cut_values = slot_offset(_HeadFields, "cut_values")
    _patient_id = slot_offset(_HeadFields, "patient_id")
    _study_date = slot_offset(_HeadFields, "study_date")
    _instance_number = slot_offset(_HeadFields, "instance_number")
    for i, name in enumerate(_SERIES_INPUTS):
        _series_inputs[i] = slot_offset(_HeadFields, name)


def forget() -> None:
    """Empty the memory of the last series folder (the reference's forget_series_dirs)."""
    global _last_inputs, _last_dir
    _last_inputs = ()
    _last_dir = ""


def check_required(fields):
    """``check_required(fields)``: the common case here, any other by the reference."""
    if type(fields) is not _HeadFields:
        return _check_required(fields)
    if (
        read_slot(fields, _study_instance_uid)
        and read_slot(fields, _series_instance_uid)
        and read_slot(fields, _sop_instance_uid)
        and not read_slot(fields, _cut_values)
        and read_slot(fields, _patient_id) is not None
    ):
        study_date = read_slot(fields, _study_date)
        # The reference's set, read at each call as the reference reads its global.
        if study_date is not None and study_date in _reference._VALID_DATES:
            return []  # every instance of a study repeats its date
    return _check_required(fields)


cdef inline bint _same(object a, object b) except -1:
    """As a tuple's ``==`` compares its items: identity first (inline here: the repeated
    inputs of a series are the same strings), then ``==``."""
    return a is b or PyObject_RichCompareBool(a, b, Py_EQ)


def series_dir(pacs_name, fields):
    """``series_dir(pacs_name, fields)``: the last series' folder when its inputs repeat."""
    global _last_inputs, _last_dir
    cdef Py_ssize_t i
    cdef tuple last = _last_inputs
    if type(fields) is _HeadFields and len(last) == 11 and _same(pacs_name, last[0]):
        # inputs == _last_inputs, item by item, without making the tuple.
        for i in range(10):
            if not _same(read_slot(fields, _series_inputs[i]), last[i + 1]):
                break
        else:
            return _last_dir
    inputs = (pacs_name, *[getattr(fields, name) for name in _SERIES_INPUTS])
    if inputs == _last_inputs:
        return _last_dir
    made = _series_dir(*inputs)
    _last_inputs = inputs
    _last_dir = made
    return made


cdef inline bint _only(object text, bint dots) noexcept:
    """``text`` is non-empty ASCII of digits (and dots, if ``dots``)."""
    cdef Py_ssize_t n, i
    cdef const unsigned char* s
    cdef unsigned char c
    if not PyUnicode_Check(text) or not PyUnicode_IS_ASCII(text):
        return False
    n = PyUnicode_GET_LENGTH(text)
    if n == 0:
        return False
    s = PyUnicode_1BYTE_DATA(text)
    for i in range(n):
        c = s[i]
        if not (0x30 <= c <= 0x39 or (dots and c == 0x2E)):
            return False
    return True


def instance_file_name(fields):
    """``instance_file_name(fields)``: ``{InstanceNumber:04}-{SOPInstanceUID}.dcm`` of
    digits and dots here, any other by the reference."""
    cdef Py_ssize_t n, skip, digits, width, uid_length, size, i
    cdef const unsigned char* s
    cdef unsigned char* out
    if type(fields) is not _HeadFields:
        return _instance_file_name(fields)
    number = read_slot(fields, _instance_number)
    uid = read_slot(fields, _sop_instance_uid) or "SOPInstanceUID"
    if number and _only(number, False) and _only(uid, True) and not read_slot(fields, _cut_values):
        # (number.lstrip("0") or "0").rjust(4, "0")
        n = PyUnicode_GET_LENGTH(number)
        s = PyUnicode_1BYTE_DATA(number)
        skip = 0
        while skip < n and s[skip] == 0x30:
            skip += 1
        digits = n - skip
        if digits == 0:
            skip, digits = n - 1, 1  # "0"
        width = digits if digits > 4 else 4
        uid_length = PyUnicode_GET_LENGTH(uid)
        size = width + 1 + uid_length + 4
        if size <= _max_component:
            name = PyUnicode_New(size, 127)
            out = PyUnicode_1BYTE_DATA_W(name)
            for i in range(width - digits):
                out[i] = 0x30
            memcpy(out + width - digits, s + skip, digits)
            out[width] = 0x2D  # "-"
            memcpy(out + width + 1, PyUnicode_1BYTE_DATA(uid), uid_length)
            memcpy(out + width + 1 + uid_length, b".dcm", 4)
            return name
    return _instance_file_name(fields)
