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
imports nothing of the reference (``bind`` hands it over).
"""

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


def bind(reference, reference_class) -> None:
    """Take the namespace of the pure-Python module ``reference`` and the reference
    class ``reference_class`` (its other cases)."""
    global _names, _DataFragment, _CommandError, _StorageError
    global _C_STORE_RQ, _C_STORE_RSP, _SUCCESS, _CAN_SEND
    global _reference_handle, _reference_command, _reference_store_requested
    global _reference_stored
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
            wait = writer.write(event.data) if writer is not None and event.data else None
            if event.is_last:
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
        self._store_requested_c(context, command)

    def _dataset_complete(self):
        return self._dataset_complete_c()

    def _stored(self, context_id, command, outcome, writer):
        self._stored_c(context_id, command, outcome, writer)

    cdef _command_c(self, received):
        command = received.command
        context = self.contexts.get(received.context_id)
        if context is not None and command.command_field == _C_STORE_RQ:
            self._store_requested_c(context, command)
            return None
        return _reference_command(self, received)

    cdef _store_requested_c(self, context, command):
        sop_class_uid = command.affected_sop_class_uid
        if (
            command.has_dataset
            and command.affected_sop_instance_uid
            and sop_class_uid
            and (sop_class_uid == context.abstract_syntax or self.server.policy.promiscuous)
        ):
            self._writer = self.server.store.begin(
                pacs_name=self.calling_ae_title,
                sop_class_uid=sop_class_uid,
                sop_instance_uid=command.affected_sop_instance_uid,
                transfer_syntax_uid=context.transfer_syntax,
            )
            self._current = (context.context_id, command, _SUCCESS, "")
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
        record = series.record(fields.series_instance_uid)
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
        self.bytes_stored += instance.size
        self.telemetry.instance_stored()
        for warning in instance.warnings:
            self._log.warning("%s: %s", command.affected_sop_instance_uid, warning)
        if series is not None:
            self.server.notifier.instance_stored(series.stored(instance))
        conn = self.conn
        if conn.state in _CAN_SEND:  # _respond, inlined: once per instance
            conn.send_message(
                context_id,
                _names["encode_response"](
                    _C_STORE_RSP,
                    command.message_id,
                    _SUCCESS,
                    affected_sop_class_uid=command.affected_sop_class_uid,
                    affected_sop_instance_uid=command.affected_sop_instance_uid,
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
