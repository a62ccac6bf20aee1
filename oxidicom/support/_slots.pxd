# cython: language_level=3
"""A field of a msgspec Struct read at its offset, for the compiled twins (issue 21).

A Struct's fields are slots: read as an attribute from compiled code, each costs a
generic attribute lookup (the type's cache, the member descriptor, its type check),
some 140 instructions; the twins read about forty per small instance. ``slot_offset``
takes a field's offset from its member descriptor once (at a twin's ``bind``), and
``read_slot`` reads an object of exactly that class there. A twin reads that way only
after ``type(obj) is cls``; anything else goes the reference's way.
"""

from cpython.object cimport PyObject

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

# A member of type T_OBJECT_EX (structmember.h; Py_T_OBJECT_EX since CPython 3.12): what
# __slots__ and msgspec make, an object that raises AttributeError while unset.
cdef enum:
    _OBJECT_EX = 16


cdef inline Py_ssize_t slot_offset(object cls, str name) except -1:
    """The offset of the object field ``name`` of ``cls`` (a slot: a member descriptor,
    of ``cls`` or of a base it inherits the field from)."""
    descriptor = None
    for klass in cls.__mro__:
        if name in klass.__dict__:
            descriptor = klass.__dict__[name]
            break
    if type(descriptor).__name__ != "member_descriptor":
        raise TypeError(f"{cls.__name__}.{name} is not a slot")
    member = (<PyMemberDescrObject*>descriptor).d_member
    if member.type != _OBJECT_EX:
        raise TypeError(f"{cls.__name__}.{name} is not an object slot")
    return member.offset


cdef inline object read_slot(object obj, Py_ssize_t offset):
    """The field at ``offset`` of ``obj`` (of the class it was taken from)."""
    cdef PyObject* value = (<PyObject**>((<char*><PyObject*>obj) + offset))[0]
    if value == NULL:
        raise AttributeError(f"a field of {type(obj).__name__} is not set")
    return <object>value


cdef inline object field(object obj, object cls, Py_ssize_t offset, str name):
    """``obj.name``: at ``offset`` when ``obj`` is exactly a ``cls``, else looked up."""
    if type(obj) is cls:
        return read_slot(obj, offset)
    return getattr(obj, name)
