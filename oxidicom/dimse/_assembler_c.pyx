# cython: language_level=3
"""Compiled twin of :meth:`oxidicom.dimse.assembler.MessageAssembler.feed` (issue 21): it
runs for every fragment, twice per small instance.

``_AssemblerState`` holds the assembler's state in C fields; it is the first base of
``MessageAssemblerC``, so the reference's ``__init__`` and ``idle`` reach the same fields
through their member descriptors. ``feed`` is the reference's, line for line.
``decode_command`` is read from the reference module's namespace at each call, as the
reference reads its global (the tests point it at either codec); the classes once, at
``bind``. This module imports nothing of the reference (``bind`` hands it over). A
fragment's fields are read at their offsets (``oxidicom/support/_slots.pxd``) when it is
exactly a ``DataFragment``; anything else is the reference's ``feed``.
"""

from oxidicom.support._slots cimport field, read_slot, slot_offset

cdef dict _names = None  # the namespace of the module oxidicom.dimse.assembler
cdef object _CommandError = None
cdef object _CommandReceived = None
cdef object _DataFragment = None
cdef object _reference_feed = None
cdef Py_ssize_t _is_command, _context_id, _is_last, _data
cdef object _Command = None
cdef Py_ssize_t _has_dataset


def bind(reference, reference_class) -> None:
    """Take the namespace of the pure-Python module ``reference`` and the reference
    class ``reference_class``."""
    global _names, _CommandError, _CommandReceived, _DataFragment, _reference_feed
    global _is_command, _context_id, _is_last, _data, _Command, _has_dataset
    _names = reference.__dict__
    _CommandError = reference.CommandError
    _CommandReceived = reference.CommandReceived
    _DataFragment = reference.DataFragment
    _reference_feed = reference_class.feed
    _is_command = slot_offset(_DataFragment, "is_command")
    _context_id = slot_offset(_DataFragment, "context_id")
    _is_last = slot_offset(_DataFragment, "is_last")
    _data = slot_offset(_DataFragment, "data")
    _Command = reference.Command
    _has_dataset = slot_offset(_Command, "has_dataset")


cdef class _AssemblerState:
    """The assembler's state, in C fields; the first base of ``MessageAssemblerC``."""

    cdef public Py_ssize_t max_command_length
    cdef public bytearray _command
    cdef public object _command_context
    cdef public object dataset_context

    def feed(self, fragment):
        """``MessageAssemblerPy.feed``: a complete command, a data set fragment to store,
        or None (command incomplete)."""
        if type(fragment) is not _DataFragment:
            return _reference_feed(self, fragment)
        context_id = read_slot(fragment, _context_id)
        is_last = read_slot(fragment, _is_last)
        if not read_slot(fragment, _is_command):
            if context_id != self.dataset_context:
                if self.dataset_context is None:
                    raise _CommandError("data set fragment without a command announcing it")
                raise _CommandError(
                    f"data set fragment on context {context_id}, "
                    f"expected {self.dataset_context}"
                )
            if is_last:
                self.dataset_context = None
            return fragment
        if self.dataset_context is not None:
            raise _CommandError("command fragment while a data set is still being received")
        if self._command_context is None:
            self._command_context = context_id
        elif context_id != self._command_context:
            raise _CommandError("command fragments on two presentation contexts")
        data = read_slot(fragment, _data)
        if len(self._command) + len(data) > self.max_command_length:
            raise _CommandError(f"command set longer than {self.max_command_length} bytes")
        if not is_last:
            self._command += data
            return None
        if self._command:
            self._command += data
            command = _names["decode_command"](self._command)
            self._command = bytearray()
        else:
            command = _names["decode_command"](data)
        context = self._command_context
        self._command_context = None
        if field(command, _Command, _has_dataset, "has_dataset"):
            self.dataset_context = context
        return _CommandReceived(context, command)
