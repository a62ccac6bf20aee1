# cython: language_level=3
"""Compiled twin of what :class:`oxidicom.storage.writer.InstanceWriter` does for every
instance (issue 21).

``_WriterState`` holds the writer's state in C fields; it is the first base of
``InstanceWriterC``, so the reference's methods that the compiled writer keeps (early and
streamed writes, refusals, clean-up, the properties) reach the same fields through their
member descriptors. Its methods are the reference's per-instance ones, line for line:
``__init__``, ``write``, ``finish``, ``_resolve_target`` and the common case of
``_finish_whole`` (placed on the loop: no fsync, no journal entry to make durable); any
other case is the reference's own method.

The functions they call (the head parser, the layout, ``write_then_rename``, the errors)
are read from the reference module's namespace at each call, as the reference reads its
globals; the errors the methods catch, ``EARLY_WRITE_BYTES``, the file mode and part10's
template once, at ``bind``. This module imports nothing of the reference (``bind`` hands
it over).
"""

import sys

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memcpy

from oxidicom.support._slots cimport field, slot_offset

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    const char* PyUnicode_1BYTE_DATA(object o)

cdef dict _names = None  # the namespace of the module oxidicom.storage.writer
cdef object _template = None  # file_meta's: everything but the SOPInstanceUID's value
# The last template: an association's instances repeat the class, syntax and title.
cdef tuple _last_template_key = ()
cdef bytes _last_prefix = b""
cdef bytes _last_tail = b""
cdef object _reference_finish_whole = None
cdef object _dataset_error = None
cdef object _storage_error = None
cdef Py_ssize_t _early_write_bytes = 0
cdef object _file_mode = None
cdef object _HeadFields = None
cdef Py_ssize_t _sop_instance_uid, _sop_class_uid


def bind(reference, reference_class) -> None:
    """Take the namespace of the pure-Python module ``reference`` and the reference
    class ``reference_class`` (its slow paths)."""
    global _names, _reference_finish_whole, _dataset_error, _storage_error
    global _early_write_bytes, _file_mode, _template, _HeadFields, _sop_instance_uid
    global _sop_class_uid
    _names = reference.__dict__
    _template = sys.modules[reference.file_meta.__module__]._template
    _reference_finish_whole = reference_class._finish_whole
    _dataset_error = reference.DatasetError
    _storage_error = reference.StorageError
    _early_write_bytes = reference.EARLY_WRITE_BYTES
    _file_mode = reference._FILE_MODE
    _HeadFields = reference.HeadFields
    _sop_instance_uid = slot_offset(_HeadFields, "sop_instance_uid")
    _sop_class_uid = slot_offset(_HeadFields, "sop_class_uid")


cdef class _WriterState:
    """The writer's state, in C fields; the first base of ``InstanceWriterC``.

    Public: the reference's methods that the compiled writer keeps, and the tests, read
    and write them as the reference's attributes.
    """

    cdef public object _store, _pacs_name, _command_uids, _temp, _head, _fields
    cdef public object _warnings, _target, _error, _fd, _flushing, _durable
    cdef public list _parts
    cdef public Py_ssize_t _flush_bytes, _gathered, _size
    cdef public bint _head_done

    def __init__(
        self,
        store,
        pacs_name,
        meta,
        transfer_syntax_uid,
        temp,
        command_uids,
        flush_bytes=None,
    ):
        self._store = store
        self._flush_bytes = store.flush_bytes if flush_bytes is None else flush_bytes
        self._pacs_name = pacs_name
        #: (AffectedSOPClassUID, AffectedSOPInstanceUID) of the C-STORE-RQ: the file meta's.
        self._command_uids = command_uids
        self._temp = temp
        self._head = _names["HeadParser"](transfer_syntax_uid)
        self._head_done = False
        self._fields = None
        self._warnings = ()
        #: Series dir (relative), directory, final path, file name.
        self._target = None
        self._error = None
        self._parts = [meta]
        self._gathered = len(meta)
        self._size = 0
        self._fd = None
        self._flushing = None
        #: Blocking work before the file is placed (the series' journal entry made durable).
        self._durable = None

    def write(self, data):
        """``InstanceWriterPy.write``: take one fragment."""
        if self._error is not None:
            return None
        if not self._head_done:
            try:
                if self._head.feed(data):
                    self._head_done = True
                    resolve_target(self)
            except _dataset_error as error:
                self._refuse(error)
                return None
        self._parts.append(data)
        self._gathered += len(data)
        if self._gathered < self._flush_bytes:
            if (
                self._gathered >= _early_write_bytes
                and self._head_done
                and self._flushing is None
                and not self._store.sync_files
                and (self._store.memory_backed or self._size + self._gathered <= self._flush_bytes)
            ):
                self._write_early()
            return None
        if self._flushing is not None and not self._flushing.done():
            return self._flushing
        self._start_flush()
        return None

    def finish(self, before_placing=None):
        """``InstanceWriterPy.finish``: the data set is complete, place the file."""
        store = self._store
        loop = store._loop  # Store.loop without its call, when it is current
        if loop is None or not loop.is_running():
            loop = store.loop
        if self._error is None and not self._head_done:
            self._head_done = True
            try:
                resolve_target(self)
            except _dataset_error as error:
                self._refuse(error)
        if self._error is None and before_placing is not None:
            try:
                self._durable = before_placing(self._fields, self._target[0])
            except _storage_error as error:
                self._refuse(error)
        if self._error is not None:
            if self._fd is not None or self._flushing is not None:
                return _names["asyncio"].ensure_future(self._fail_streamed(self._error))
            failed = loop.create_future()
            failed.set_exception(self._error)
            self._parts = []
            return failed
        if self._flushing is None:
            if self._fd is None:
                return finish_whole(self, loop)
            if self._durable is None:
                return self._finish_early(loop)
        return _names["asyncio"].ensure_future(self._finish_streamed())

    def _resolve_target(self):
        resolve_target(self)

    def _finish_whole(self, loop):
        return finish_whole(self, loop)


cdef int resolve_target(_WriterState w) except -1:
    """``InstanceWriterPy._resolve_target``."""
    fields = w._head.finish()
    w._fields = fields
    warnings = _names["check_required"](fields)
    sop_class_uid, sop_instance_uid = w._command_uids
    if (
        field(fields, _HeadFields, _sop_instance_uid, "sop_instance_uid") != sop_instance_uid
        or field(fields, _HeadFields, _sop_class_uid, "sop_class_uid") != sop_class_uid
    ):
        # A mismatch, or no SOPClassUID in the data set (the command has one).
        warnings += _names["check_identity"](fields, sop_class_uid, sop_instance_uid)
    w._warnings = tuple(warnings) if warnings else ()
    relative = _names["series_dir"](w._pacs_name, fields)
    directory = w._store._root_prefix + relative
    name = _names["instance_file_name"](fields)
    w._target = (relative, directory, f"{directory}/{name}", name)
    return 0


cdef object finish_whole(_WriterState w, loop):
    """``InstanceWriterPy._finish_whole``: here only its common case (on the loop)."""
    store = w._store
    if store.sync_files or w._durable is not None:
        return _reference_finish_whole(w, loop)
    # The hot path for ordinary instances: no Task, and no executor trip without fsync.
    target = w._target
    directory, final = target[1], target[2]
    parts = w._parts
    w._parts = []
    done = loop.create_future()
    try:  # Store.write_whole, without fsync, inlined
        size = _names["write_then_rename"](
            w._temp, parts, False, _file_mode, _names["_unlink"], store.place, directory, final
        )
        w._size = size
    except OSError as error:
        done.set_exception(_names["_storage_error"](error))
    except Exception as error:  # a bug: answered as the executor path answers it
        done.set_exception(error)
    else:  # _result, inlined
        done.set_result(
            _names["StoredInstance"](w._fields, target[0], target[3], size, w._warnings)
        )
    return done


cdef bytes file_meta(sop_class_uid, sop_instance_uid, transfer_syntax_uid, source_ae_title):
    """``part10.file_meta``: an ASCII UID here, with the last template when the class, the
    syntax, the title and the UID's padded length repeat; anything else the reference's."""
    global _last_template_key, _last_prefix, _last_tail
    cdef Py_ssize_t n, padded, size
    cdef char* out
    if type(sop_instance_uid) is not str or not PyUnicode_IS_ASCII(sop_instance_uid):
        return _names["file_meta"](
            sop_class_uid, sop_instance_uid, transfer_syntax_uid, source_ae_title
        )
    n = PyUnicode_GET_LENGTH(sop_instance_uid)
    padded = n + (n & 1)
    if padded > 0xFFFE:  # the reference says why, after its template's own errors
        return _names["file_meta"](
            sop_class_uid, sop_instance_uid, transfer_syntax_uid, source_ae_title
        )
    key = (sop_class_uid, transfer_syntax_uid, source_ae_title, padded)
    if key != _last_template_key:
        _last_prefix, _last_tail = _template(*key)
        _last_template_key = key
    prefix, tail = _last_prefix, _last_tail
    size = len(prefix) + padded + len(tail)
    meta = PyBytes_FromStringAndSize(NULL, size)
    out = PyBytes_AS_STRING(meta)
    memcpy(out, PyBytes_AS_STRING(prefix), len(prefix))
    memcpy(out + len(prefix), PyUnicode_1BYTE_DATA(sop_instance_uid), n)
    if padded != n:
        out[len(prefix) + n] = 0  # UI padding (PS3.5 6.2)
    memcpy(out + len(prefix) + padded, PyBytes_AS_STRING(tail), len(tail))
    return meta


def begin(
    store,
    *,
    pacs_name,
    sop_class_uid,
    sop_instance_uid,
    transfer_syntax_uid,
    flush_bytes=None,
):
    """``Store.begin``, compiled: start receiving one instance."""
    meta = file_meta(sop_class_uid, sop_instance_uid, transfer_syntax_uid, pacs_name)
    temp = f"{store._prefix}{next(store._names)}.part"
    command = (sop_class_uid, sop_instance_uid)
    return _names["InstanceWriter"](
        store, pacs_name, meta, transfer_syntax_uid, temp, command, flush_bytes
    )
