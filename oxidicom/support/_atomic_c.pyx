# cython: language_level=3
"""Compiled twin of :func:`oxidicom.support.atomic.write_then_rename` (issue 21).

Once per stored instance, the reference makes four system calls through ``os``: each
parses its arguments, converts the path to bytes, and releases and takes back the GIL.
This is the same function, line for line, over the C calls: ``open``, one ``writev`` of
every part, ``fsync`` if asked, ``close``, then the caller's ``rename``. The GIL is
released around each call as ``os`` does (the fsync path runs in the executor); a call
interrupted by a signal is made again after the signal's handlers ran (PEP 475; not
``close``, as ``os.close``). Errors
are the ones ``os`` raises: the same ``OSError`` subclass from ``errno``, with the file
name where ``os.open`` gives one.

The uncommon cases are the reference's own code, handed over by ``bind``: more parts
than the stack holds, and a write the kernel cut short (``write_all`` then writes what is
left). ``unlink`` and ``rename`` are the caller's, as in the reference.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.exc cimport (
    PyErr_CheckSignals,
    PyErr_SetFromErrno,
    PyErr_SetFromErrnoWithFilenameObject,
)

cdef extern from "Python.h":
    bytes PyUnicode_EncodeFSDefault(object unicode)

from libc.errno cimport EINTR, errno
from posix.fcntl cimport open as c_open
from posix.uio cimport iovec, writev
from posix.unistd cimport close as c_close
from posix.unistd cimport fsync as c_fsync
from libc.string cimport memchr

from os import fspath

# Parts written by one writev from the stack; more go to the reference's write_all.
cdef enum:
    MAX_PARTS = 16

cdef object _reference = None  # the module oxidicom.support.atomic
cdef int _flags = 0
cdef object _write_all = None
cdef object _unwritten = None


def bind(reference) -> None:
    """Take the flags and the uncommon paths of the pure-Python module ``reference``."""
    global _reference, _flags, _write_all, _unwritten
    _flags = reference.TEMP_FILE_FLAGS
    _write_all = reference.write_all
    _unwritten = reference._unwritten
    _reference = reference


cdef int _open(object temp, int mode) except -1:
    """``os.open(temp, TEMP_FILE_FLAGS, mode)``."""
    # The name errors give, as os.open's: the path-like's own str or bytes.
    name = temp if type(temp) is str else fspath(temp)
    cdef bytes path = PyUnicode_EncodeFSDefault(name) if isinstance(name, str) else name
    cdef const char* c_path = path
    cdef int fd
    if memchr(c_path, 0, len(path)) != NULL:
        raise ValueError("embedded null byte")
    while True:
        with nogil:
            fd = c_open(c_path, _flags, mode)
        if fd >= 0:
            return fd
        if errno != EINTR:
            PyErr_SetFromErrnoWithFilenameObject(OSError, name)
            return -1
        PyErr_CheckSignals()


cdef Py_ssize_t _write_parts(int fd, list parts) except -1:
    """``write_all(fd, parts)``: one writev of every part; the reference for the rest."""
    cdef Py_ssize_t n = len(parts)
    cdef Py_buffer views[MAX_PARTS]
    cdef iovec vectors[MAX_PARTS]
    cdef Py_ssize_t taken = 0, expected = 0, written, i
    if n > MAX_PARTS:
        return _write_all(fd, parts)
    try:
        for i in range(n):
            PyObject_GetBuffer(parts[i], &views[i], PyBUF_SIMPLE)
            taken += 1
            vectors[i].iov_base = views[i].buf
            vectors[i].iov_len = <size_t>views[i].len
            expected += views[i].len
        while True:
            with nogil:
                written = writev(fd, vectors, <int>n)
            if written >= 0:
                break
            if errno != EINTR:
                PyErr_SetFromErrno(OSError)
                return -1
            PyErr_CheckSignals()
    finally:
        for i in range(taken):
            PyBuffer_Release(&views[i])
    if written == expected:
        return written
    # Cut short (rare on a regular file): the reference writes what is left.
    return written + _write_all(fd, _unwritten(parts, written))


cdef int _fsync(int fd) except -1:
    cdef int result
    while True:
        with nogil:
            result = c_fsync(fd)
        if result == 0:
            return 0
        if errno != EINTR:
            PyErr_SetFromErrno(OSError)
            return -1
        PyErr_CheckSignals()


cdef int _close(int fd) except -1:
    """``os.close(fd)``: never made again, not even on EINTR (the descriptor is gone)."""
    cdef int result
    with nogil:
        result = c_close(fd)
    if result == 0:
        return 0
    PyErr_SetFromErrno(OSError)
    return -1


def write_then_rename(temp, list parts, bint fsync, int mode, unlink, rename, *rename_args):
    """``write_then_rename(temp, parts, fsync, mode, unlink, rename, *rename_args)``,
    compiled: see the reference."""
    cdef int fd
    cdef Py_ssize_t size
    if _reference is None:
        raise RuntimeError("oxidicom.support._atomic_c is used before bind()")
    try:
        fd = _open(temp, mode)
        try:
            size = _write_parts(fd, parts)
            if fsync:
                _fsync(fd)
        finally:
            _close(fd)
        rename(temp, *rename_args)
    except BaseException:
        unlink(temp)
        raise
    return size
