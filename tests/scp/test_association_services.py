"""The association driven as h11's tests drive a Connection: no socket, no shell.

A real sans-IO Connection is fed bytes; its events go to the Association, which is
given fake services (slots, store, notifier) whose writer finishes with a plain future
the test completes itself (or one already done: placed on the loop). What the
association answers is read back from ``data_to_send``, decoded. Every test runs over
both twins: the reference (``AssociationPy``) and the compiled per-instance path
(``oxidicom/scp/_association_c.pyx``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from oxidicom.dicom.head import HeadFields
from oxidicom.dimse.commands import CommandField, Status, decode_response_status, encode_request
from oxidicom.scp import association as association_module
from oxidicom.scp.acceptance import AcceptancePolicy
from oxidicom.scp.access import AccessPolicy
from oxidicom.scp.association import Association
from oxidicom.storage.writer import StorageError, StoredInstance
from oxidicom.telemetry.summarized import SummarizedWarnings
from oxidicom.ul import pdu as ul
from oxidicom.ul.connection import Connection
from tests.implementations import IMPLEMENTATIONS, compiled_module
from tests.integration.raw_peer import (
    EXPLICIT_LE,
    IMPLICIT_LE,
    MR_STORAGE,
    VERIFICATION,
    associate_rq,
    message,
)

SERIES = "1.2.3.4.5"
OTHER_CLASS = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage


@pytest.fixture(params=IMPLEMENTATIONS, autouse=True)
def association_twin(request: pytest.FixtureRequest) -> Iterator[type[Association]]:
    """The class ``_open`` makes: the reference, or the compiled twin (really loaded)."""
    if request.param == "python":
        cls: type[Association] = association_module.AssociationPy
    else:
        module = compiled_module("oxidicom.scp._association_c")
        cls = association_module.Association
        assert issubclass(cls, module._AssociationState), "built, but not selected"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys.modules[__name__], "Association", cls)
        yield cls


def _fields() -> HeadFields:
    names = [name for name in HeadFields.__struct_fields__ if name != "cut_values"]
    values = dict.fromkeys(names)
    values.update(specific_character_set=(), series_instance_uid=SERIES)
    return HeadFields(**values)  # type: ignore[arg-type]


@dataclass
class FakeWriter:
    """Keeps the data set; ``finish`` returns a future the test completes."""

    placed: asyncio.Future[StoredInstance]
    begun: dict[str, object] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    series_instance_uid: str | None = SERIES
    abandoned: bool = False

    def write(self, data: memoryview) -> None:
        self.data += data

    def finish(self, placing: object) -> asyncio.Future[StoredInstance]:
        placing(_fields(), "SERVICES/PACS/X/series")  # type: ignore[operator]
        return self.placed

    def abandon(self) -> None:
        self.abandoned = True


@dataclass
class FakeServices:
    """What an association needs of its process (oxidicom.scp.interfaces.Services)."""

    slots: int = 1
    store: SimpleNamespace = field(default_factory=SimpleNamespace)
    notifier: SimpleNamespace = field(default_factory=SimpleNamespace)
    held: list[Association] = field(default_factory=list)
    calls: list[tuple[str, object]] = field(default_factory=list)
    writers: list[FakeWriter] = field(default_factory=list)
    #: What every writer's finish gives at once; None: a future the test completes.
    placed_at_once: StoredInstance | None = None

    def __post_init__(self) -> None:
        self.settings = SimpleNamespace(max_command_set_length=65536)
        self.policy = AcceptancePolicy(ae_title="ChRIS", max_pdu_length=16384)
        self.access = AccessPolicy(ae_title="ChRIS")
        self.max_associations = self.slots
        self.slot_limit = "limit"
        self.rate_limit = "more than 1/s (OXIDICOM_MAX_ASSOCIATION_RATE)"
        self.rejections = SummarizedWarnings(
            logging.getLogger("tests.scp"), "association from %s rejected: %s", "%d more (%s)"
        )
        self.store.begin = self._begin
        for name in ("series_starting", "instance_stored", "instance_failed"):
            self._record(name)
        self._record("association_ended")

    def _record(self, name: str) -> None:
        setattr(self.notifier, name, lambda *args: self.calls.append((name, args)))

    def _begin(self, **begun: object) -> FakeWriter:
        writer = FakeWriter(asyncio.get_running_loop().create_future(), begun)
        if self.placed_at_once is not None:  # placed on the loop, as a small instance is
            writer.placed.set_result(self.placed_at_once)
        self.writers.append(writer)
        return writer

    def next_association_id(self) -> str:
        return "test-1"

    def request_allowed(self, peer: str) -> bool:
        return True

    def acquire_slot(
        self, association: Association | None = None, *, preempt: bool = False
    ) -> bool:
        if len(self.held) >= self.slots:
            return False
        self.held.append(association)  # type: ignore[arg-type]
        return True

    def release_slot(self, association: Association | None = None) -> None:
        self.held.remove(association)  # type: ignore[arg-type]


#: Every association a test opened: ended after it (the telemetry counts the running ones).
_opened: list[Association] = []


@pytest.fixture(autouse=True)
def _end_what_the_test_opened() -> Iterator[None]:
    yield
    while _opened:
        association = _opened.pop()
        if not association.ended:
            association._end("the test is over")


def _open(services: FakeServices) -> tuple[Association, Connection]:
    conn = Connection(max_pdu_length=16384)
    association = Association(services, conn, "127.0.0.1:4242")  # type: ignore[arg-type]
    _opened.append(association)
    return association, conn


def _feed(association: Association, conn: Connection, data: bytes) -> list[asyncio.Future[None]]:
    """Bytes in, every event handled; the futures the association asked to wait for."""
    conn.receive_data(data, 0.0)
    waits = []
    while (event := conn.next_event()) is not None:
        wait = association.handle(event)
        if wait is not None:
            waits.append(wait)
    return waits


def _answers(conn: Connection) -> list[ul.PDU]:
    out = conn.data_to_send()
    pdus = []
    while out:
        pdu_type, length = ul.parse_pdu_header(out[:6])
        pdus.append(ul.parse_body(pdu_type, out[6 : 6 + length]))
        out = out[6 + length :]
    return pdus


def _status(pdu: ul.PDU) -> int:
    assert isinstance(pdu, ul.PDataTF)
    return decode_response_status(b"".join(v.data for v in pdu.values if v.is_command))[2]


def _store_rq(
    message_id: int,
    dataset: bytes,
    sop_class_uid: str = MR_STORAGE,
    sop_instance_uid: str | None = None,
    context_id: int = 1,
) -> bytes:
    command = encode_request(
        CommandField.C_STORE_RQ,
        message_id,
        affected_sop_class_uid=sop_class_uid,
        affected_sop_instance_uid=f"1.2.3.{message_id}"
        if sop_instance_uid is None
        else sop_instance_uid,
        has_dataset=True,
        priority=0,
    )
    return message(context_id, command, dataset, 100)


def _established(services: FakeServices) -> tuple[Association, Connection]:
    association, conn = _open(services)
    _feed(association, conn, associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
    assert isinstance(_answers(conn)[0], ul.AssociateAC)
    return association, conn


async def test_echo_then_release_gives_the_slot_back() -> None:
    services = FakeServices()
    association, conn = _open(services)
    _feed(association, conn, associate_rq(contexts=((VERIFICATION, IMPLICIT_LE),)))
    assert isinstance(_answers(conn)[0], ul.AssociateAC)
    assert services.held == [association]

    echo = encode_request(CommandField.C_ECHO_RQ, 7, affected_sop_class_uid=VERIFICATION)
    _feed(association, conn, message(1, echo, None, 100))
    assert _status(_answers(conn)[0]) == Status.SUCCESS

    _feed(association, conn, ul.encode(ul.ReleaseRQ()))
    assert isinstance(_answers(conn)[0], ul.ReleaseRP)
    assert services.held == []
    assert services.calls[-1] == ("association_ended", ("test-1", []))


async def test_a_store_is_answered_only_once_the_file_is_placed() -> None:
    services = FakeServices()
    association, conn = _open(services)
    _feed(association, conn, associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
    _answers(conn)

    waits = _feed(association, conn, _store_rq(1, b"x" * 250))
    writer = services.writers[0]
    assert bytes(writer.data) == b"x" * 250
    # The association asks the shell to wait, and has answered nothing yet.
    assert len(waits) == 1 and not waits[0].done()
    assert conn.data_to_send() == b""
    assert [name for name, _ in services.calls] == ["series_starting"]

    writer.placed.set_result(StoredInstance(_fields(), "SERVICES/PACS/X/series", "f.dcm", 250))
    await waits[0]
    assert _status(_answers(conn)[0]) == Status.SUCCESS
    assert [name for name, _ in services.calls] == ["series_starting", "instance_stored"]

    conn.receive_eof()
    _feed(association, conn, b"")
    assert services.held == []
    ended = services.calls[-1]
    assert ended[0] == "association_ended"
    assert [record.count for record in ended[1][1]] == [1]  # type: ignore[index]


async def test_a_failed_write_is_refused_and_the_association_goes_on() -> None:
    services = FakeServices()
    association, conn = _open(services)
    _feed(association, conn, associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
    _answers(conn)

    waits = _feed(association, conn, _store_rq(1, b"y" * 10))
    services.writers[0].placed.set_exception(StorageError("No space left on device"))
    await waits[0]
    assert _status(_answers(conn)[0]) == Status.OUT_OF_RESOURCES
    assert services.calls[-1][0] == "instance_failed"

    waits = _feed(association, conn, _store_rq(2, b"z" * 10))
    assert len(services.writers) == 2 and waits
    conn.receive_eof()
    _feed(association, conn, b"")
    assert services.held == []


async def test_without_a_free_slot_the_request_is_rejected_and_holds_none() -> None:
    services = FakeServices(slots=0)
    association, conn = _open(services)
    _feed(association, conn, associate_rq())
    answer = _answers(conn)[0]
    assert isinstance(answer, ul.AssociateRJ)
    assert services.held == []
    conn.receive_eof()
    _feed(association, conn, b"")
    assert services.held == []


async def test_the_end_abandons_an_unfinished_instance() -> None:
    services = FakeServices()
    association, conn = _open(services)
    _feed(association, conn, associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
    _answers(conn)
    command = encode_request(
        CommandField.C_STORE_RQ,
        1,
        affected_sop_class_uid=MR_STORAGE,
        affected_sop_instance_uid="1.2.3.1",
        has_dataset=True,
        priority=0,
    )
    # The command and the first half of the data set; then the peer is gone.
    _feed(association, conn, message(1, command, b"a" * 100, 100)[:-10])
    conn.receive_eof()
    _feed(association, conn, b"")
    assert services.writers[0].abandoned
    assert services.held == []


async def test_an_instance_placed_at_once_is_answered_in_the_same_batch() -> None:
    stored = StoredInstance(_fields(), "SERVICES/PACS/X/series", "f.dcm", 250, ("odd date",))
    services = FakeServices(placed_at_once=stored)
    association, conn = _established(services)

    for message_id in (1, 2):
        assert _feed(association, conn, _store_rq(message_id, b"x" * 250)) == []
        assert _status(_answers(conn)[0]) == Status.SUCCESS
    assert services.writers[1].begun == {
        "pacs_name": "RAWPEER",
        "sop_class_uid": MR_STORAGE,
        "sop_instance_uid": "1.2.3.2",
        "transfer_syntax_uid": EXPLICIT_LE,
    }
    assert association.bytes_stored == 500
    assert association.telemetry.instances_stored == 2
    # (The fake notifier promises no registration: each file asks for it again.)
    names = [name for name, _ in services.calls]
    assert names == ["series_starting", "instance_stored"] * 2
    record = services.calls[-1][1][0]
    assert record.count == 2  # type: ignore[union-attr]


async def test_a_stored_instance_s_warnings_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    stored = StoredInstance(_fields(), "SERVICES/PACS/X/series", "f.dcm", 9, ("odd date",))
    association, conn = _established(FakeServices(placed_at_once=stored))
    with caplog.at_level(logging.WARNING, logger="oxidicom.association"):
        _feed(association, conn, _store_rq(4, b"x" * 9))
    assert _status(_answers(conn)[0]) == Status.SUCCESS
    assert "1.2.3.4: odd date" in caplog.messages


async def test_a_store_of_another_class_than_its_context_s_is_refused() -> None:
    services = FakeServices()
    association, conn = _established(services)
    assert _feed(association, conn, _store_rq(1, b"x" * 20, sop_class_uid=OTHER_CLASS)) == []
    assert _status(_answers(conn)[0]) == Status.SOP_CLASS_NOT_SUPPORTED
    assert services.writers == []
    assert [name for name, _ in services.calls] == ["instance_failed"]

    # ... unless the receiver takes any class (OXIDICOM_SCP_PROMISCUOUS).
    services.policy = AcceptancePolicy(ae_title="ChRIS", max_pdu_length=16384, promiscuous=True)
    waits = _feed(association, conn, _store_rq(2, b"x" * 20, sop_class_uid=OTHER_CLASS))
    assert len(waits) == 1 and services.writers[0].begun["sop_class_uid"] == OTHER_CLASS


async def test_a_store_without_its_instance_uid_is_refused() -> None:
    services = FakeServices()
    association, conn = _established(services)
    assert _feed(association, conn, _store_rq(1, b"x" * 20, sop_instance_uid="")) == []
    assert _status(_answers(conn)[0]) == Status.CANNOT_UNDERSTAND
    assert services.writers == []


async def test_a_command_on_a_context_not_accepted_aborts() -> None:
    services = FakeServices()
    association, conn = _established(services)
    _feed(association, conn, _store_rq(1, b"x" * 20, context_id=3))
    assert isinstance(_answers(conn)[0], ul.Abort)
    assert association.ended and services.held == []
    assert services.writers == []


async def test_a_data_set_without_its_command_aborts() -> None:
    services = FakeServices()
    association, conn = _established(services)
    _feed(association, conn, _store_rq(1, b"x" * 20)[-30:])  # its last P-DATA-TF only
    assert isinstance(_answers(conn)[0], ul.Abort)
    assert association.ended and services.held == []


async def test_a_series_registration_that_cannot_be_recorded_refuses_the_file(
    caplog: pytest.LogCaptureFixture,
) -> None:
    services = FakeServices()
    association, _ = _established(services)

    def full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    services.notifier.series_starting = full
    with pytest.raises(StorageError, match="registration: No space left on device"):
        association._placing(_fields(), "SERVICES/PACS/X/series")

    def broken(*_: object) -> None:
        raise ValueError("a bug")

    services.notifier.series_starting = broken
    with (
        caplog.at_level(logging.ERROR, logger="oxidicom.association"),
        pytest.raises(StorageError, match="registration: a bug"),
    ):
        association._placing(_fields(), "SERVICES/PACS/X/series")
    assert "cannot record the series registration" in caplog.messages

    # Once promised (its journal key set), a series asks nothing more.
    services.notifier.series_starting = lambda record, *_: setattr(record, "journal_key", "k")
    assert association._placing(_fields(), "SERVICES/PACS/X/series") is None
    services.notifier.series_starting = full
    assert association._placing(_fields(), "SERVICES/PACS/X/series") is None
