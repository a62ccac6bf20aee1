"""Shared drivers for the Upper Layer tests: build connections, drain and normalise events."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from oxidicom.ul import pdu as ul
from oxidicom.ul.connection import Connection
from oxidicom.ul.constants import DICOM_APPLICATION_CONTEXT
from oxidicom.ul.events import (
    AbortSent,
    AssociationRequested,
    DataFragment,
    Event,
    PeerAborted,
    ReleaseRequested,
)
from oxidicom.ul.fsm import State

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def make_rq(max_length: int | None = 16384, contexts: int = 1) -> ul.AssociateRQ:
    return ul.AssociateRQ(
        called_ae_title="OXIDICOM",
        calling_ae_title="TESTSCU",
        application_context=DICOM_APPLICATION_CONTEXT,
        presentation_contexts=tuple(
            ul.PresentationContextRQ(2 * i + 1, VERIFICATION, (IMPLICIT_LE,))
            for i in range(contexts)
        ),
        user_information=ul.UserInformation(
            maximum_length=max_length, implementation_class_uid="1.2.3.4"
        ),
    )


def make_ac(rq: ul.AssociateRQ) -> ul.AssociateAC:
    """Accept every proposed context with its first transfer syntax."""
    return ul.AssociateAC(
        called_ae_title=rq.called_ae_title,
        calling_ae_title=rq.calling_ae_title,
        application_context=DICOM_APPLICATION_CONTEXT,
        presentation_contexts=tuple(
            ul.PresentationContextAC(pc.context_id, 0, pc.transfer_syntaxes[0])
            for pc in rq.presentation_contexts
        ),
        user_information=ul.UserInformation(
            maximum_length=16384, implementation_class_uid="1.2.826.0.1.3680043.10.1"
        ),
    )


def drain(conn: Connection) -> list[Event]:
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


def new_sta3(max_pdu_length: int = 16384, peer_max: int | None = 16384, **kw: object) -> Connection:
    """A connection that has just reported an A-ASSOCIATE-RQ (Sta3)."""
    conn = Connection(max_pdu_length=max_pdu_length, **kw)  # type: ignore[arg-type]
    conn.receive_data(ul.encode(make_rq(peer_max)), kw.get("now", 0.0))  # type: ignore[arg-type]
    event = conn.next_event()
    assert isinstance(event, AssociationRequested), event
    assert conn.state is State.STA3
    return conn


def new_sta6(max_pdu_length: int = 16384, peer_max: int | None = 16384, **kw: object) -> Connection:
    """An established association (Sta6) with nothing left to send or read."""
    conn = new_sta3(max_pdu_length, peer_max, **kw)
    conn.accept(make_ac(make_rq(peer_max)))
    assert conn.data_to_send()[:1] == b"\x02"
    assert conn.state is State.STA6
    return conn


def new_sta8(**kw: object) -> Connection:
    conn = new_sta6(**kw)
    conn.receive_data(ul.encode(ul.ReleaseRQ()), 1.0)
    assert drain(conn) == [ReleaseRequested()]
    assert conn.state is State.STA8
    return conn


def new_sta13() -> Connection:
    """Sta13 after our A-RELEASE-RP."""
    conn = new_sta8()
    conn.release()
    assert conn.data_to_send() == ul.encode(ul.ReleaseRP())
    assert conn.state is State.STA13
    return conn


def pdata(*values: tuple[int, bool, bool, bytes]) -> bytes:
    return ul.encode(ul.PDataTF(tuple(ul.PresentationDataValue(*v) for v in values)))


def split_pdus(stream: bytes) -> list[bytes]:
    out, offset = [], 0
    while offset < len(stream):
        (length,) = struct.unpack_from(">I", stream, offset + 2)
        out.append(stream[offset : offset + 6 + length])
        offset += 6 + length
    return out


def abort_pdus(data: bytes) -> list[ul.Abort]:
    """Every PDU in ``data``, which must all be A-ABORTs."""
    pdus = [ul.parse_pdu(raw) for raw in split_pdus(data)]
    assert all(isinstance(p, ul.Abort) for p in pdus), pdus
    return pdus  # type: ignore[return-value]


# -- normalised event streams ---------------------------------------------------------


def expected_events(pdus: Iterable[ul.PDU]) -> list[tuple]:
    """What a reader must report for these received PDUs (after accept and release)."""
    out: list[tuple] = []
    for pdu in pdus:
        match pdu:
            case ul.AssociateRQ():
                out.append(("associate", pdu))
            case ul.PDataTF(values=values):
                out.extend(("pdv", v.context_id, v.is_command, v.is_last, v.data) for v in values)
            case ul.ReleaseRQ():
                out.append(("release",))
            case ul.Abort(source=source, reason=reason):
                out.append(("aborted", source, reason))
            case _:
                raise AssertionError(pdu)
    return out


def normalise(events: list[Event], pdv_lengths: list[int]) -> list[tuple]:
    """Join each PDV's fragments, checking no fragment crosses a PDV boundary.

    ``pdv_lengths`` gives the data length of every PDV in order; a PDV's fragments must
    share context and command flag, and only its final fragment may have ``is_last``.
    """
    out: list[tuple] = []
    lengths = iter(pdv_lengths)
    pending: list[DataFragment] = []
    want = 0
    for event in events:
        if isinstance(event, DataFragment):
            if not pending:
                want = next(lengths)
            pending.append(event)
            got = sum(len(f.data) for f in pending)
            assert got <= want, f"fragment crosses a PDV boundary ({got} > {want})"
            if got == want:
                first = pending[0]
                assert all(f.context_id == first.context_id for f in pending)
                assert all(f.is_command == first.is_command for f in pending)
                assert not any(f.is_last for f in pending[:-1]), "is_last before the PDV end"
                data = b"".join(bytes(f.data) for f in pending)
                out.append(("pdv", first.context_id, first.is_command, pending[-1].is_last, data))
                pending = []
            continue
        assert not pending, f"{event!r} inside a PDV"
        match event:
            case AssociationRequested(request=request):
                out.append(("associate", request))
            case ReleaseRequested():
                out.append(("release",))
            case AbortSent():
                out.append(("abort-sent", event.source, event.reason))
            case PeerAborted(source=source, reason=reason):
                out.append(("aborted", source, reason))
            case _:
                out.append((type(event).__name__,))
    assert not pending, "stream ended inside a PDV"
    return out


def run_acceptor(
    chunks: Iterable[bytes], eof: bool = True, **kw: object
) -> tuple[list[Event], bytes]:
    """Feed chunks, accepting the association and the release as they are requested."""
    conn = Connection(max_pdu_length=kw.pop("max_pdu_length", 16384), **kw)  # type: ignore[arg-type]
    events: list[Event] = []
    sent = bytearray()
    now = 0.0

    def pump() -> None:
        while (event := conn.next_event()) is not None:
            events.append(event)
            if isinstance(event, AssociationRequested):
                conn.accept(make_ac(event.request))
            elif isinstance(event, ReleaseRequested):
                conn.release()
            sent.extend(conn.data_to_send())

    for chunk in chunks:
        now += 0.001
        conn.receive_data(chunk, now)
        pump()
    if eof:
        conn.receive_eof()
        pump()
    return events, bytes(sent)
