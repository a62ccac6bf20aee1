# cython: language_level=3
"""Compiled twin of what :class:`oxidicom.scp.association.Association` does for every
instance (issue 21).

``_AssociationState`` holds the association's state in C fields; it is the first base
of ``AssociationC``, so the reference's methods that the compiled association keeps
(the request, release, abort, refusals, the end) reach the same fields through their
member descriptors. Its methods are the reference's per-instance ones, line for line:
``handle`` for a data fragment, ``_command`` and ``_store_requested`` for a C-STORE-RQ
on an accepted context, ``_dataset_complete``, ``_placing``, and ``_stored`` for a
stored instance; any other case is the reference's own method.

``encode_response`` is read from the reference module's namespace at each call, as the
reference reads its globals; the classes and constants once, at ``bind``. This module
imports nothing of the reference (``bind`` hands it over). The fields of the events,
commands, contexts and stored instances (msgspec Structs) are read at their offsets
(``oxidicom/support/_slots.pxd``).
"""

from oxidicom.support._slots cimport field, read_slot, slot_offset

cdef dict _names = None  # the namespace of the module oxidicom.scp.association
cdef object _DataFragment = None
cdef object _CommandError = None
cdef object _StorageError = None
cdef object _C_STORE_RQ = None
cdef object _C_STORE_RSP = None
cdef object _SUCCESS = None
cdef tuple _CAN_SEND = ()
cdef object _reference_handle = None
cdef object _reference_command = None
cdef object _reference_store_requested = None
cdef object _reference_stored = None
cdef object _Command = None
cdef object _CommandReceived = None
cdef object _AcceptedContext = None
cdef object _StoredInstance = None
cdef object _HeadFields = None
cdef Py_ssize_t _fields_series_instance_uid
cdef Py_ssize_t _fragment_data, _fragment_is_last
cdef Py_ssize_t _received_command, _received_context_id
cdef Py_ssize_t _command_field, _command_message_id, _command_has_dataset
cdef Py_ssize_t _command_class_uid, _command_instance_uid
cdef Py_ssize_t _context_id, _context_abstract_syntax, _context_transfer_syntax
cdef Py_ssize_t _instance_size, _instance_warnings


def bind(reference, reference_class) -> None:
    """Take the namespace of the pure-Python module ``reference`` and the reference
    class ``reference_class`` (its other cases)."""
    global _names, _DataFragment, _CommandError, _StorageError
    global _C_STORE_RQ, _C_STORE_RSP, _SUCCESS, _CAN_SEND
    global _reference_handle, _reference_command, _reference_store_requested
    global _reference_stored, _Command, _CommandReceived, _AcceptedContext, _StoredInstance
    global _fragment_data, _fragment_is_last, _received_command, _received_context_id
    global _command_field, _command_message_id, _command_has_dataset
    global _command_class_uid, _command_instance_uid
    global _context_id, _context_abstract_syntax, _context_transfer_syntax
    global _instance_size, _instance_warnings, _HeadFields, _fields_series_instance_uid
    _names = reference.__dict__
    _DataFragment = reference.DataFragment
    _CommandError = reference.CommandError
    _StorageError = reference.StorageError
    _C_STORE_RQ = reference._C_STORE_RQ
    _C_STORE_RSP = reference._C_STORE_RSP
    _SUCCESS = reference._SUCCESS
    _CAN_SEND = tuple(reference._CAN_SEND)
    _reference_handle = reference_class.handle
    _reference_command = reference_class._command
    _reference_store_requested = reference_class._store_requested
    _reference_stored = reference_class._stored
    _Command = reference.Command
    _CommandReceived = reference.CommandReceived
    _AcceptedContext = reference.AcceptedContext
    _StoredInstance = reference.StoredInstance
    _fragment_data = slot_offset(_DataFragment, "data")
    _fragment_is_last = slot_offset(_DataFragment, "is_last")
    _received_command = slot_offset(_CommandReceived, "command")
    _received_context_id = slot_offset(_CommandReceived, "context_id")
    _command_field = slot_offset(_Command, "command_field")
    _command_message_id = slot_offset(_Command, "message_id")
    _command_has_dataset = slot_offset(_Command, "has_dataset")
    _command_class_uid = slot_offset(_Command, "affected_sop_class_uid")
    _command_instance_uid = slot_offset(_Command, "affected_sop_instance_uid")
    _context_id = slot_offset(_AcceptedContext, "context_id")
    _context_abstract_syntax = slot_offset(_AcceptedContext, "abstract_syntax")
    _context_transfer_syntax = slot_offset(_AcceptedContext, "transfer_syntax")
    _instance_size = slot_offset(_StoredInstance, "size")
    _instance_warnings = slot_offset(_StoredInstance, "warnings")
    _HeadFields = reference.HeadFields
    _fields_series_instance_uid = slot_offset(_HeadFields, "series_instance_uid")


cdef class _AssociationState:
    """The association's state, in C fields; the first base of ``AssociationC``.

    Public: the reference's methods, the shell and the tests read and write them as the
    reference's attributes. ``AssociationPy.__init__`` sets every one.
    """

    cdef public object server, conn, peer, peer_certificate, id, calling_ae_title
    cdef public dict contexts
    cdef public object assembler, series, telemetry, _writer, _current, _log
    cdef public bint ended, _holds_slot
    cdef public double started
    cdef public Py_ssize_t bytes_stored

    def handle(self, event):
        """``AssociationPy.handle``: act on one event."""
        if type(event) is not _DataFragment:
            return _reference_handle(self, event)
        try:
            item = self.assembler.feed(event)
        except _CommandError as error:
            self._abort(f"bad DIMSE message: {error}")
            return None
        if item is event:
            writer = self._writer
            data = read_slot(event, _fragment_data)
            wait = writer.write(data) if writer is not None and data else None
            if read_slot(event, _fragment_is_last):
                return self._dataset_complete_c()
            return wait
        if item is None:
            return None
        return self._command_c(item)

    # The methods below are for the reference's callers (and the tests); handle calls
    # the C functions directly.
    def _command(self, received):
        return self._command_c(received)

    def _store_requested(self, context, command):
        if type(context) is _AcceptedContext and type(command) is _Command:
            self._store_requested_c(context, command)
        else:
            _reference_store_requested(self, context, command)

    def _dataset_complete(self):
        return self._dataset_complete_c()

    def _stored(self, context_id, command, outcome, writer):
        self._stored_c(context_id, command, outcome, writer)

    cdef _command_c(self, received):
        if type(received) is not _CommandReceived:
            return _reference_command(self, received)
        command = read_slot(received, _received_command)
        context = self.contexts.get(read_slot(received, _received_context_id))
        if (
            type(context) is _AcceptedContext
            and type(command) is _Command
            and read_slot(command, _command_field) == _C_STORE_RQ
        ):
            self._store_requested_c(context, command)
            return None
        return _reference_command(self, received)

    cdef _store_requested_c(self, context, command):
        """A C-STORE-RQ: ``context`` exactly an AcceptedContext, ``command`` a Command."""
        sop_class_uid = read_slot(command, _command_class_uid)
        sop_instance_uid = read_slot(command, _command_instance_uid)
        if (
            read_slot(command, _command_has_dataset)
            and sop_instance_uid
            and sop_class_uid
            and (
                sop_class_uid == read_slot(context, _context_abstract_syntax)
                or self.server.policy.promiscuous
            )
        ):
            self._writer = self.server.store.begin(
                pacs_name=self.calling_ae_title,
                sop_class_uid=sop_class_uid,
                sop_instance_uid=sop_instance_uid,
                transfer_syntax_uid=read_slot(context, _context_transfer_syntax),
            )
            self._current = (read_slot(context, _context_id), command, _SUCCESS, "")
            return
        _reference_store_requested(self, context, command)

    cdef _dataset_complete_c(self):
        current, self._current = self._current, None
        writer, self._writer = self._writer, None
        if current is None:
            return None
        context_id, command, status, comment = current
        if writer is None:
            self._refuse(context_id, command, status, comment)
            return None
        placed = writer.finish(self._placing)
        if placed.done():  # placed on the loop: answer in the same batch
            self._stored_c(context_id, command, placed, writer)
            return None
        return _answer_when_placed(self, context_id, command, placed, writer)

    def _placing(self, fields, series_dir):
        """``AssociationPy._placing``: before a file is placed, the first of its series
        promises the registration."""
        series = self.series
        if series is None:
            return None
        record = series.record(
            field(fields, _HeadFields, _fields_series_instance_uid, "series_instance_uid")
        )
        if record.journal_key is not None:
            return None
        try:
            return self.server.notifier.series_starting(record, fields, series_dir)
        except Exception as error:
            if not isinstance(error, OSError):
                self._log.error("cannot record the series registration", exc_info=error)
            detail = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise _StorageError(f"cannot record the series registration: {detail}") from error

    cdef _stored_c(self, context_id, command, outcome, writer):
        error = outcome.exception()
        if error is not None:
            _reference_stored(self, context_id, command, outcome, writer)
            return
        series = self.series
        instance = outcome.result()
        self.bytes_stored += field(instance, _StoredInstance, _instance_size, "size")
        self.telemetry.instance_stored()
        sop_instance_uid = field(
            command, _Command, _command_instance_uid, "affected_sop_instance_uid"
        )
        for warning in field(instance, _StoredInstance, _instance_warnings, "warnings"):
            self._log.warning("%s: %s", sop_instance_uid, warning)
        if series is not None:
            self.server.notifier.instance_stored(series.stored(instance))
        conn = self.conn
        if conn.state in _CAN_SEND:  # _respond, inlined: once per instance
            conn.send_message(
                context_id,
                _names["encode_response"](
                    _C_STORE_RSP,
                    field(command, _Command, _command_message_id, "message_id"),
                    _SUCCESS,
                    affected_sop_class_uid=field(
                        command, _Command, _command_class_uid, "affected_sop_class_uid"
                    ),
                    affected_sop_instance_uid=sop_instance_uid,
                ),
            )


def _answer_when_placed(association, context_id, command, placed, writer):
    """``AssociationPy._dataset_complete``'s end, when the file is placed later: a future
    completed once the answer is made."""
    answered = placed.get_loop().create_future()

    def respond(outcome):
        association._stored(context_id, command, outcome, writer)
        answered.set_result(None)

    placed.add_done_callback(respond)
    return answered
