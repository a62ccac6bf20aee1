"""A worker's side of the supervisor's channel (oxidicom/aio/handoff.py), in process.

This test is the supervisor: it accepts a real TCP connection, passes its descriptor
over a real channel, and reads the worker's reports; the peer on the other end asks for
an association and gets it from the worker's receiver.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import msgspec
import pytest

from oxidicom.aio.channel import (
    CONNECTION,
    CONNECTION_OVER_RATE,
    Load,
    decode_load,
    encode_holds_elsewhere,
)
from oxidicom.aio.server import Receiver
from oxidicom.scp.services import ScpService
from oxidicom.ul import pdu as ul
from tests.integration.raw_peer import associate_rq

PORT = 104  # what the worker says it listens on: the supervisor's port


class Supervisor:
    """The supervisor's end of the channel: passes descriptors, reads reports."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reports: asyncio.Queue[Load] = asyncio.Queue()
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        if data:
            self.reports.put_nowait(decode_load(data))

    async def report_where(self, condition: Callable[[Load], bool]) -> Load:
        while not condition(report := await asyncio.wait_for(self.reports.get(), 10)):
            pass
        return report

    def close(self) -> None:
        if self.sock.fileno() != -1:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()


@pytest.fixture
async def handed(
    service: ScpService,
) -> AsyncIterator[tuple[Receiver, Supervisor, asyncio.Event]]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    supervisor = Supervisor(ours)
    lost = asyncio.Event()
    receiver = Receiver(service)
    receiver.start_handoff(theirs, PORT, lost.set)
    try:
        yield receiver, supervisor, lost
    finally:
        await receiver.stop(5)
        supervisor.close()


async def test_a_connection_handed_over_is_served_and_reported(
    handed: tuple[Receiver, Supervisor, asyncio.Event],
) -> None:
    receiver, supervisor, _ = handed
    assert receiver.port == PORT
    assert await supervisor.report_where(lambda r: True) == Load(0, 0, 0, 0)  # serving
    reader, writer = await hand_over(supervisor, CONNECTION)
    writer.write(associate_rq("HANDED"))
    header = await asyncio.wait_for(reader.readexactly(6), 10)
    assert header[0] == ul.PDUType.A_ASSOCIATE_AC
    report = await supervisor.report_where(lambda r: r.associations == 1)
    assert (report.taken, report.open) == (1, 1)
    assert report.holds == {"127.0.0.1": 1}  # for the host-share rule of the receiver
    writer.close()
    report = await supervisor.report_where(lambda r: r.open == 0 and r.associations == 0)
    assert report.holds == {}


async def hand_over(
    supervisor: Supervisor, message: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A real TCP connection, accepted here and passed to the worker with ``message``."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        accepted, _ = listener.accept()
    with accepted:
        socket.send_fds(supervisor.sock, [message], [accepted.fileno()])
    return reader, writer


async def test_connections_taken_together_count_as_open_in_every_report(
    handed: tuple[Receiver, Supervisor, asyncio.Event],
) -> None:
    """A worker takes every descriptor waiting on its channel at once and opens each
    connection a moment later: a report in between must count them all, or the
    supervisor, seeing it emptier than it is, hands it more than its part of the slots."""
    _, supervisor, _ = handed
    await supervisor.report_where(lambda r: True)
    peers = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        for _ in range(3):
            peers.append(await asyncio.open_connection(*listener.getsockname()[:2]))
        accepted = [listener.accept()[0] for _ in range(3)]
    for sock in accepted:  # all three before the worker reads any
        with sock:
            socket.send_fds(supervisor.sock, [CONNECTION], [sock.fileno()])
    reports = []
    while not reports or reports[-1].open < 3:
        reports.append(await supervisor.report_where(lambda r: True))
    assert reports[0].taken == 3
    assert all(r.open == r.taken == 3 for r in reports), reports
    for _, writer in peers:
        writer.close()


async def test_a_connection_the_supervisor_found_over_the_rate_is_rejected(
    handed: tuple[Receiver, Supervisor, asyncio.Event],
) -> None:
    """Transient, temporary congestion, as one process rejects a request over the rate;
    the next connection from that address is served as the supervisor says."""
    _, supervisor, _ = handed
    reader, writer = await hand_over(supervisor, CONNECTION_OVER_RATE)
    writer.write(associate_rq("OVER"))
    answer = await asyncio.wait_for(reader.readexactly(10), 10)
    assert answer[0] == ul.PDUType.A_ASSOCIATE_RJ
    assert tuple(answer[7:10]) == (2, 3, 1)  # transient, provider (presentation), congestion
    writer.close()
    reader, writer = await hand_over(supervisor, CONNECTION)
    writer.write(associate_rq("NEXT"))
    header = await asyncio.wait_for(reader.readexactly(6), 10)
    assert header[0] == ul.PDUType.A_ASSOCIATE_AC
    writer.close()


async def test_the_slots_held_elsewhere_reach_the_service(
    service: ScpService, handed: tuple[Receiver, Supervisor, asyncio.Event]
) -> None:
    _, supervisor, _ = handed
    await supervisor.report_where(lambda r: True)
    supervisor.sock.send(encode_holds_elsewhere({"10.0.0.2": 3}))
    async with asyncio.timeout(10):
        while service.holds_elsewhere != {"10.0.0.2": 3}:
            await asyncio.sleep(0)


async def test_the_worker_stops_when_the_channel_ends(
    handed: tuple[Receiver, Supervisor, asyncio.Event],
) -> None:
    _, supervisor, lost = handed
    await supervisor.report_where(lambda r: True)
    supervisor.close()  # the supervisor was killed
    await asyncio.wait_for(lost.wait(), 10)


async def test_a_stopping_worker_ends_its_channel(
    handed: tuple[Receiver, Supervisor, asyncio.Event],
) -> None:
    receiver, supervisor, lost = handed
    await supervisor.report_where(lambda r: True)
    await receiver.stop(5)
    loop = asyncio.get_running_loop()
    assert await loop.sock_recv(supervisor.sock, 64) == b""  # end of channel
    assert not lost.is_set()  # its own choice: nothing to report


class _Connection:
    """What the service keeps of a connection, for counting arrivals."""

    is_open = True
    peer = "127.0.0.1:4242"
    association = None

    def evict(self) -> None:
        raise AssertionError("not evicted here")


@pytest.mark.parametrize("tls", [False, True])
async def test_each_connection_arrives_once(service: ScpService, tls: bool) -> None:
    """A TLS connection arrives at its handshake, and its association protocol, taking
    it over, is not a second arrival: a worker would count one connection as two gone."""
    if tls:  # the certificate is not read here
        settings = msgspec.structs.replace(service.settings, tls_certificate="server.pem")
        service = ScpService(settings, service.store, service.notifier)
    before = service.arrivals
    for _ in range(3):
        connection = _Connection()
        if tls:
            service.handshake_started(connection)
            service.handshake_ended(connection)
        service.connection_opened(connection)  # type: ignore[arg-type]
    assert service.arrivals - before == 3
