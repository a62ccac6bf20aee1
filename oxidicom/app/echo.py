"""A C-ECHO client (Verification SCU, PS3.4 Annex A), for people and health checks.

It speaks the Upper Layer itself with this package's PDU codec (PS3.8 9.3) and
DIMSE command codec (PS3.7 9.3.5): A-ASSOCIATE-RQ proposing Verification in implicit
VR little endian, one C-ECHO-RQ, then A-RELEASE-RQ (PS3.8 7.2). Blocking sockets with
one overall deadline: it runs once and exits.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from oxidicom.dicom.uids import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    IMPLICIT_VR_LITTLE_ENDIAN,
    VERIFICATION_SOP_CLASS,
)
from oxidicom.dimse.commands import CommandError, CommandField, decode_response_status
from oxidicom.dimse.commands import encode_request as encode_command
from oxidicom.scp.access import DEFAULT_CALLING_AE_TITLE
from oxidicom.ul.constants import (
    DICOM_APPLICATION_CONTEXT,
    PDU_HEADER_LENGTH,
    ACSERejectReason,
    ContextResult,
    PresentationRejectReason,
    RejectResult,
    RejectSource,
    UserRejectReason,
)
from oxidicom.ul.errors import ULProtocolError
from oxidicom.ul.pdu import (
    PDU,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    PresentationContextRQ,
    PresentationDataValue,
    ReleaseRP,
    ReleaseRQ,
    UserInformation,
    encode,
    parse_body,
    parse_pdu_header,
)

#: The largest P-DATA-TF we accept back (PS3.8 D.1); a C-ECHO-RSP is ~100 bytes.
_MAX_PDU_LENGTH = 16384
_CONTEXT_ID = 1
_MESSAGE_ID = 1


class EchoError(Exception):
    """The echo failed; ``str(error)`` is one line for the user."""


class EchoBusy(EchoError):
    """The peer rejected the association as transient, local limit exceeded: it is up."""


@dataclass(frozen=True)
class EchoResult:
    status: int
    seconds: float


def _reject_text(rj: AssociateRJ) -> str:
    reasons: dict[int, type] = {
        RejectSource.SERVICE_USER: UserRejectReason,
        RejectSource.SERVICE_PROVIDER_ACSE: ACSERejectReason,
        RejectSource.SERVICE_PROVIDER_PRESENTATION: PresentationRejectReason,
    }

    def name(enum: type | None, value: int) -> str:
        try:
            return enum(value).name.lower().replace("_", " ") if enum else str(value)
        except ValueError:
            return f"code {value}"

    return (
        f"{name(RejectResult, rj.result)}, source {name(RejectSource, rj.source)},"
        f" reason {name(reasons.get(rj.source), rj.reason)}"
    )


def receive_exactly(
    sock: socket.socket, size: int, deadline: float | None = None, *, reset_is_close: bool = False
) -> bytes:
    """Up to ``size`` bytes from a blocking socket: fewer only when the peer closed first.

    With a ``deadline`` (``time.monotonic()``), each read may take only the time left,
    and :class:`TimeoutError` is raised once it has passed. With ``reset_is_close``, a
    connection reset counts as the peer closing. Shared with the tests' raw peer.
    """
    data = bytearray()
    while len(data) < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
        try:
            chunk = sock.recv(size - len(data))
        except ConnectionResetError:
            if not reset_is_close:
                raise
            chunk = b""
        if not chunk:
            break
        data += chunk
    return bytes(data)


class _Peer:
    def __init__(self, sock: socket.socket, deadline: float, where: str) -> None:
        self.sock = sock
        self.deadline = deadline
        self.where = where

    def send(self, pdu: PDU) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        self.sock.sendall(encode(pdu))

    def _exactly(self, n: int) -> bytes:
        data = receive_exactly(self.sock, n, self.deadline)
        if len(data) < n:
            raise EchoError(f"{self.where} closed the connection")
        return data

    def receive(self) -> PDU:
        pdu_type, length = parse_pdu_header(self._exactly(PDU_HEADER_LENGTH))
        if length > 4 * _MAX_PDU_LENGTH:
            raise EchoError(f"{self.where} sent a PDU of {length} bytes (type {pdu_type:#04x})")
        try:
            pdu = parse_body(pdu_type, self._exactly(length))
        except ULProtocolError as error:
            raise EchoError(f"{self.where} sent a malformed PDU: {error}") from None
        if isinstance(pdu, Abort):
            raise EchoError(f"{self.where} aborted the association (source {pdu.source})")
        return pdu


def _associate_rq(calling_ae_title: str, called_ae_title: str) -> AssociateRQ:
    return AssociateRQ(
        called_ae_title=called_ae_title,
        calling_ae_title=calling_ae_title,
        application_context=DICOM_APPLICATION_CONTEXT,
        presentation_contexts=(
            PresentationContextRQ(
                _CONTEXT_ID, VERIFICATION_SOP_CLASS, (IMPLICIT_VR_LITTLE_ENDIAN,)
            ),
        ),
        user_information=UserInformation(
            maximum_length=_MAX_PDU_LENGTH,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        ),
    )


def _converse(peer: _Peer, calling_ae_title: str, called_ae_title: str) -> int:
    peer.send(_associate_rq(calling_ae_title, called_ae_title))
    answer = peer.receive()
    if isinstance(answer, AssociateRJ):
        text = f"{peer.where} rejected the association: {_reject_text(answer)}"
        busy = (
            answer.result == RejectResult.TRANSIENT
            and answer.source == RejectSource.SERVICE_PROVIDER_PRESENTATION
        )
        raise (EchoBusy if busy else EchoError)(text)
    if not isinstance(answer, AssociateAC):
        raise EchoError(f"{peer.where} answered A-ASSOCIATE-RQ with {type(answer).__name__}")
    context = next((c for c in answer.presentation_contexts if c.context_id == _CONTEXT_ID), None)
    if context is None or context.result != ContextResult.ACCEPTANCE:
        result = "missing" if context is None else ContextResult(context.result).name.lower()
        raise EchoError(f"{peer.where} did not accept Verification (result: {result})")
    command = encode_command(
        CommandField.C_ECHO_RQ, _MESSAGE_ID, affected_sop_class_uid=VERIFICATION_SOP_CLASS
    )
    peer.send(PDataTF((PresentationDataValue(_CONTEXT_ID, True, True, command),)))
    received = bytearray()
    complete = False
    while not complete:
        pdu = peer.receive()
        if not isinstance(pdu, PDataTF):
            raise EchoError(f"{peer.where} answered C-ECHO-RQ with {type(pdu).__name__}")
        for value in pdu.values:
            if value.is_command and value.context_id == _CONTEXT_ID:
                received += value.data
                complete = complete or value.is_last
    try:
        field, responded_to, status = decode_response_status(received)
    except CommandError as error:
        raise EchoError(f"{peer.where} sent an unreadable C-ECHO-RSP: {error}") from None
    if field != CommandField.C_ECHO_RSP or responded_to != _MESSAGE_ID:
        raise EchoError(
            f"{peer.where} answered with command {field:#06x} to message {responded_to}"
        )
    peer.send(ReleaseRQ())
    if not isinstance(peer.receive(), ReleaseRP):
        raise EchoError(f"{peer.where} did not answer A-RELEASE-RQ with A-RELEASE-RP")
    return status


def echo(
    host: str,
    port: int,
    *,
    called_ae_title: str,
    calling_ae_title: str = DEFAULT_CALLING_AE_TITLE,
    timeout: float = 10.0,
) -> EchoResult:
    """Associate, send one C-ECHO-RQ, release; raise :class:`EchoError` on any failure."""
    started = time.monotonic()
    deadline = started + timeout
    where = f"{called_ae_title}@{host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as error:
        raise EchoError(f"cannot resolve {host!r}: {error.strerror or error}") from None
    except TimeoutError:
        raise EchoError(f"cannot connect to {host}:{port}: no answer in {timeout:g} s") from None
    except OSError as error:
        raise EchoError(f"cannot connect to {host}:{port}: {error.strerror or error}") from None
    try:
        with sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            status = _converse(_Peer(sock, deadline, where), calling_ae_title, called_ae_title)
    except TimeoutError:
        raise EchoError(f"{where} did not answer within {timeout:g} s") from None
    except OSError as error:
        raise EchoError(f"connection to {where} failed: {error.strerror or error}") from None
    if status != 0:
        raise EchoError(f"{where} answered C-ECHO with status {status:04X}")
    return EchoResult(status, time.monotonic() - started)
