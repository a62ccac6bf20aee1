"""One association as a service: Upper Layer events in, DIMSE answers and stored files out.

Theory of operation
-------------------

An :class:`Association` exists for each transport connection, created by the asyncio
shell (:mod:`oxidicom.aio.protocol`) with the connection's sans-IO
:class:`~oxidicom.ul.connection.Connection` and the process's
:class:`~oxidicom.scp.interfaces.Services`. Who calls what:

- the shell pulls events from the connection and hands each to :meth:`Association.handle`.
  When ``handle`` returns a future that is not done (a batch being written, a file being
  placed), the shell pulls nothing more until it completes: responses leave in request
  order, and storage sets the pace of the peer;
- the association answers only through the connection's local primitives (accept,
  reject, send_message, release, abort), and asks the services for everything else:
  the access policy and negotiation (who may associate, what is accepted), a slot,
  a writer from the store, and the notifier.

Its phases follow the events. **Requested** (:class:`AssociationRequested`): the
access policy, then the peer's request rate, then negotiation, then a slot; the first
refusal answers A-ASSOCIATE-RJ, and a refused request never holds a slot. **Established**: DIMSE
messages, one at a time; a C-STORE-RQ opens a writer that receives the data set's
fragments as they arrive, and the last fragment closes it; the C-STORE-RSP says
success only once the file is at its final path. **Ended**: release, abort (either
side), timeout or a dropped connection all come to ``_end`` exactly once, which
abandons an unfinished instance, gives back the slot, and reports the series of the
association to the notifier.

What may not happen: a success answered before the file is placed and before its
series' registration is promised (the journal entry written by
``notifier.series_starting``); a slot held after the end, or by a rejected request;
a response to a message after a later message's; a second end.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from oxidicom import telemetry
from oxidicom.dicom.errors import DatasetError
from oxidicom.dicom.head import HeadFields
from oxidicom.dimse.assembler import CommandReceived, MessageAssembler
from oxidicom.dimse.commands import Command, CommandError, CommandField, Status, encode_response
from oxidicom.scp.acceptance import (
    Accepted,
    AcceptedContext,
    negotiate,
    reject_busy,
    reject_congested,
)
from oxidicom.storage.series import SeriesAccumulator
from oxidicom.storage.writer import InstanceWriter, StorageError, StoredInstance
from oxidicom.support.extensions import load_compiled
from oxidicom.telemetry import exhaustion
from oxidicom.telemetry.logs import CURRENT_ASSOCIATION
from oxidicom.ul.connection import Connection
from oxidicom.ul.events import (
    AbortSent,
    AssociationRequested,
    ConnectionClosed,
    DataFragment,
    Event,
    PeerAborted,
    ReleaseRequested,
    TimedOut,
)
from oxidicom.ul.fsm import State
from oxidicom.ul.pdu import AssociateRJ, AssociateRQ

if TYPE_CHECKING:
    from oxidicom.scp.interfaces import Services

log = logging.getLogger("oxidicom.association")

_CAN_SEND = (State.STA6, State.STA8)
# Members read once per instance, as module globals: reading an enum member through its
# class costs a lookup in the enum's metaclass each time (about 0.1 us in CPython 3.11).
_C_STORE_RQ = CommandField.C_STORE_RQ
_C_STORE_RSP = CommandField.C_STORE_RSP
_SUCCESS = Status.SUCCESS
#: ``oxidicom.reject.reason`` of the rejections made here (the access policy has its own).
TOO_MANY_ASSOCIATIONS = "too_many_associations"
REQUEST_RATE_EXCEEDED = "request_rate_exceeded"
NOT_NEGOTIATED = "not_negotiated"


class AssociationPy:
    """The service side of one transport connection (the pure-Python reference: see
    :data:`Association` for the class in use)."""

    def __init__(
        self,
        server: Services,
        conn: Connection,
        peer: str,
        peer_certificate: Mapping[str, object] | None = None,
    ) -> None:
        self.server = server
        self.conn = conn
        self.peer = peer
        #: The TLS client certificate (``ssl.getpeercert()``), when one was presented.
        self.peer_certificate = peer_certificate
        self.id = server.next_association_id()
        self.calling_ae_title = ""
        self.contexts: dict[int, AcceptedContext] = {}
        self.assembler = MessageAssembler(server.settings.max_command_set_length)
        self.series: SeriesAccumulator | None = None
        self.ended = False
        self.started = time.monotonic()
        self.bytes_stored = 0
        self._holds_slot = False
        self._writer: InstanceWriter | None = None
        #: The request whose data set is being received: (context, command, status to refuse).
        self._current: tuple[int, Command, int, str] | None = None
        self._log = logging.LoggerAdapter(log, {"association": self.id})
        self.telemetry = telemetry.association(self.id, peer)

    # -- events --------------------------------------------------------------------------

    def handle(self, event: Event) -> asyncio.Future[None] | None:
        """Act on one event; a returned future must complete before the next event."""
        if type(event) is DataFragment:
            # _fragment's work, inlined: twice per instance (command and data set).
            try:
                item = self.assembler.feed(event)
            except CommandError as error:
                self._abort(f"bad DIMSE message: {error}")
                return None
            if item is event:
                writer = self._writer
                wait = writer.write(event.data) if writer is not None and event.data else None
                if event.is_last:
                    return self._dataset_complete()
                return wait
            if item is None:
                return None
            return self._command(item)  # type: ignore[arg-type]
        match event:
            case AssociationRequested(request=request):
                self._requested(request)
            case ReleaseRequested():
                if self._writer is not None or not self.assembler.idle:
                    self._log.warning("release requested inside a message: the instance is lost")
                self._end("released")
                self.conn.release()
            case PeerAborted(source=source, reason=reason):
                self._end(f"aborted by the peer (source {source}, reason {reason})")
            case AbortSent(detail=detail):
                self._end(f"aborted: {detail}")
            case TimedOut(timer=timer):
                self._log.info("%s timer expired", timer)
            case ConnectionClosed():
                self._end("connection closed")
        return None

    def _requested(self, request: AssociateRQ) -> None:
        self.calling_ae_title = request.calling_ae_title
        self.telemetry.requested(request.calling_ae_title, request.called_ae_title)
        where = f"{request.calling_ae_title}@{self.peer} -> {request.called_ae_title}"
        # Who may associate is decided before a slot is taken: a refused peer holds none.
        refusal = self.server.access.check(
            request.calling_ae_title,
            request.called_ae_title,
            self.peer.rpartition(":")[0],
            self.peer_certificate,
        )
        if refusal is not None:
            self._reject(where, refusal.reject, refusal.reason, refusal.detail)
            return
        host = self.peer.rpartition(":")[0]
        # Before negotiation and the slots: a peer asking too often costs next to nothing.
        if not self.server.request_allowed(self.peer):
            detail = f"too many association requests from {host}: {self.server.rate_limit}"
            self._reject(where, reject_congested(), REQUEST_RATE_EXCEEDED, detail)
            return
        answer = negotiate(request, self.server.policy)
        if not isinstance(answer, Accepted):
            # Refused by negotiation: no slot taken, no running association preempted.
            self._reject(where, answer, NOT_NEGOTIATED, repr(answer))
            return
        if not self.server.acquire_slot(self, preempt=True):
            limit = self.server.max_associations
            detail = f"too many associations: {limit} already running ({self.server.slot_limit})"
            self._reject(where, reject_busy(), TOO_MANY_ASSOCIATIONS, detail)
            return
        self._holds_slot = True
        self.contexts = answer.contexts
        self.series = SeriesAccumulator(self.id, self.calling_ae_title)
        self.telemetry.accepted()
        self._log.info(
            "association from %s accepted: %d of %d presentation contexts",
            where,
            len(answer.contexts),
            len(request.presentation_contexts),
        )
        self.conn.accept(answer.response)

    def _reject(self, where: str, answer: AssociateRJ, reason: str, detail: str) -> None:
        """A-ASSOCIATE-RJ: counted by ``reason`` (``oxidicom.reject.reason``), and one
        warning, or during a flood one count per 10 s for each reason, calling AE title
        and host."""
        key = f"{reason}: {self.calling_ae_title} from {self.peer.rpartition(':')[0]}"
        self.server.rejections.occurred(key, where, detail, logger=self._log)
        self.telemetry.rejected(detail, reason)
        self.conn.reject(answer)

    def _command(self, received: CommandReceived) -> asyncio.Future[None] | None:
        command = received.command
        context = self.contexts.get(received.context_id)
        if context is None:
            self._abort(f"command on presentation context {received.context_id}, not accepted")
            return None
        field = command.command_field
        if field == _C_STORE_RQ:
            self._store_requested(context, command)
        elif field == CommandField.C_ECHO_RQ and not command.has_dataset:
            self._respond(
                context.context_id,
                encode_response(
                    CommandField.C_ECHO_RSP,
                    command.message_id,
                    Status.SUCCESS,
                    affected_sop_class_uid=command.affected_sop_class_uid
                    or context.abstract_syntax,
                ),
            )
        elif field == CommandField.C_CANCEL_RQ:
            pass  # nothing of ours can be cancelled; C-CANCEL has no response
        elif command.has_dataset:
            self._current = (context.context_id, command, Status.UNRECOGNIZED_OPERATION, "")
        else:
            self._refuse(context.context_id, command, Status.UNRECOGNIZED_OPERATION, "")
        return None

    def _store_requested(self, context: AcceptedContext, command: Command) -> None:
        status, comment = _SUCCESS, ""
        if not command.has_dataset:
            self._refuse(
                context.context_id, command, Status.CANNOT_UNDERSTAND, "C-STORE without data set"
            )
            return
        if not command.affected_sop_instance_uid or not command.affected_sop_class_uid:
            status, comment = Status.CANNOT_UNDERSTAND, "C-STORE-RQ lacks the affected SOP UIDs"
        elif (
            command.affected_sop_class_uid != context.abstract_syntax
            and not self.server.policy.promiscuous
        ):
            status = Status.SOP_CLASS_NOT_SUPPORTED
            comment = f"SOP class {command.affected_sop_class_uid} not negotiated on this context"
        else:
            self._writer = self.server.store.begin(
                pacs_name=self.calling_ae_title,
                sop_class_uid=command.affected_sop_class_uid,
                sop_instance_uid=command.affected_sop_instance_uid,
                transfer_syntax_uid=context.transfer_syntax,
            )
        self._current = (context.context_id, command, status, comment)

    def _dataset_complete(self) -> asyncio.Future[None] | None:
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
            self._stored(context_id, command, placed, writer)
            return None
        answered: asyncio.Future[None] = placed.get_loop().create_future()

        def respond(outcome: asyncio.Future[StoredInstance]) -> None:
            self._stored(context_id, command, outcome, writer)
            answered.set_result(None)

        placed.add_done_callback(respond)
        return answered

    def _placing(self, fields: HeadFields, series_dir: str) -> Callable[[], None] | None:
        """Before a file is placed: the first of its series promises the registration.

        Nothing is answered success without that promise (its journal entry): raises
        :class:`StorageError` (A700, the file is not placed) when it cannot be made, and
        the series' next file tries again. Returns what makes the promise durable (the
        writer runs it before placing the file), or None.
        """
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
            raise StorageError(f"cannot record the series registration: {detail}") from error

    def _stored(
        self,
        context_id: int,
        command: Command,
        outcome: asyncio.Future[StoredInstance],
        writer: InstanceWriter,
    ) -> None:
        error = outcome.exception()
        series = self.series
        if error is None:
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
                    encode_response(
                        _C_STORE_RSP,
                        command.message_id,
                        _SUCCESS,
                        affected_sop_class_uid=command.affected_sop_class_uid,
                        affected_sop_instance_uid=command.affected_sop_instance_uid,
                    ),
                )
            return
        if isinstance(error, DatasetError | StorageError):
            status, comment = error.status, error.comment
            if isinstance(error, StorageError):
                exhaustion.report(error.os_error, "file write")
        else:  # a bug: answer honestly, keep the association, and say where
            self._log.error("storing %s failed", command.affected_sop_instance_uid, exc_info=error)
            status, comment = Status.OUT_OF_RESOURCES, f"internal error: {error}"
        self._refuse(context_id, command, status, comment, writer.series_instance_uid)

    def _refuse(
        self,
        context_id: int,
        command: Command,
        status: int,
        comment: str,
        series_instance_uid: str | None = None,
    ) -> None:
        field = command.command_field
        self._log.warning(
            "%s of %s refused: status %04X %s",
            _command_name(field),
            command.affected_sop_instance_uid,
            status,
            comment,
        )
        if field == CommandField.C_STORE_RQ and self.series is not None:
            self.series.failed(series_instance_uid, comment)
            self.telemetry.instance_failed(status)
            self.server.notifier.instance_failed(
                self.id, self.calling_ae_title, series_instance_uid, comment
            )
        self._respond(
            context_id,
            encode_response(
                field | 0x8000,
                command.message_id,
                status,
                affected_sop_class_uid=command.affected_sop_class_uid
                or command.requested_sop_class_uid,
                affected_sop_instance_uid=command.affected_sop_instance_uid,
                error_comment=comment or None,
            ),
        )

    def _respond(self, context_id: int, command: bytes) -> None:
        if self.conn.state in _CAN_SEND:
            self.conn.send_message(context_id, command)

    def _abort(self, detail: str) -> None:
        self._log.warning("aborting the association: %s", detail)
        self._end(f"aborted: {detail}")
        self.conn.abort()

    # -- the end -------------------------------------------------------------------------

    def _end(self, reason: str) -> None:
        """Once per association: let go of any unfinished instance and report the series."""
        if self.ended:
            return
        self.ended = True
        self.telemetry.ended(reason)
        if self._writer is not None:
            self._writer.abandon()
            self._writer = None
        if self._holds_slot:
            self._holds_slot = False
            self.server.release_slot(self)
        series = self.series
        if series is None:
            self._log.info("connection from %s ended: %s", self.peer, reason)
            return
        self._log.info(
            "association ended (%s): %d stored, %d failed, %d bytes in %.3f s",
            reason,
            series.stored_count,
            series.failed_count,
            self.bytes_stored,
            time.monotonic() - self.started,
        )
        # Notifiers log and link their spans to this association, whoever called _end.
        scope = CURRENT_ASSOCIATION.set(self.telemetry)
        try:
            self.server.notifier.association_ended(self.id, series.finish())
        finally:
            CURRENT_ASSOCIATION.reset(scope)


def _command_name(field: int) -> str:
    try:
        return CommandField(field).name.replace("_", "-")
    except ValueError:
        return f"command {field:#06x}"


# The compiled twin (oxidicom/scp/_association_c.pyx) of what runs for every instance:
# the association's state in C fields (``_AssociationState``, the first base of
# ``AssociationC``), ``handle`` for a data fragment, a C-STORE-RQ on an accepted context,
# ``_dataset_complete``, ``_placing`` and ``_stored`` for a stored instance. Everything
# else stays the reference's.
Association: type[AssociationPy] = AssociationPy
_c = load_compiled("oxidicom.scp._association_c")
if _c is not None:
    _c.bind(sys.modules[__name__], AssociationPy)

    class AssociationC(_c._AssociationState, AssociationPy):  # type: ignore[misc,name-defined]
        """:class:`AssociationPy` with its state in C fields and its per-instance path
        compiled."""

    Association = AssociationC
