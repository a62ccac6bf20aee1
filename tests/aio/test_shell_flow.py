"""The shell's per-read path, over both twins: events pulled one wait at a time, reading
paused while storage is behind or the peer reads nothing of ours, and resumed after.

The association is a stand-in here (its ``handle`` returns the futures the test holds),
so what is tested is the shell's own bookkeeping; the Upper Layer under it is real.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from oxidicom.aio.context import ScopedProtocol
from oxidicom.aio.protocol import AssociationProtocolPy
from oxidicom.scp.services import ScpService
from oxidicom.ul.events import DataFragment
from tests.aio.reads import read
from tests.integration.raw_peer import EXPLICIT_LE, MR_STORAGE, associate_rq, pdata


class _Transport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.written: list[bytes] = []
        self.pauses = 0
        self.resumes = 0
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 4242), "socket": self.sock}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        self.pauses += 1

    def resume_reading(self) -> None:
        self.resumes += 1


class _Storage:
    """Stands for the association's storage: each data fragment waits for a future of the
    test's. Every other event goes on to the real association (so that it ends)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, association: Any) -> None:
        self.loop = loop
        self.association = association
        self.fragments: list[DataFragment] = []
        self.others: list[object] = []
        self.waits: list[asyncio.Future[None]] = []

    def handle(self, event: object) -> asyncio.Future[None] | None:
        if not isinstance(event, DataFragment):
            self.others.append(event)
            return self.association.handle(event)  # type: ignore[no-any-return]
        self.fragments.append(event)
        wait: asyncio.Future[None] = self.loop.create_future()
        self.waits.append(wait)
        return wait


@pytest.fixture
async def established(service: ScpService, shell: type[AssociationProtocolPy]) -> Any:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    transport = _Transport(sock)
    inner = shell(service)
    protocol = ScopedProtocol(inner)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    read(protocol, associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
    assert transport.written and transport.written[0][0] == 0x02  # A-ASSOCIATE-AC
    real = inner.association
    storage = _Storage(asyncio.get_running_loop(), real)
    inner.association = storage  # type: ignore[assignment]
    try:
        yield protocol, inner, transport, storage
    finally:
        inner.association = real
        protocol.connection_lost(None)
        sock.close()


async def test_reading_pauses_while_storage_is_behind_and_resumes_once_it_caught_up(
    established: Any,
) -> None:
    protocol, inner, transport, storage = established
    piece = bytes(range(256)) * 256  # 64 KiB of a data set in each PDU
    pdus = [pdata(1, False, index == 9, piece) for index in range(10)]
    for pdu in pdus:
        read(protocol, pdu)
    # The first fragment waits for storage: nothing after it is pulled, and the rest
    # (more than the high-water mark) stops the reading, once.
    assert len(storage.fragments) == 1
    assert inner.conn.buffered > inner.server.high_water
    assert transport.pauses == 1 and transport.resumes == 0
    for index in range(10):
        storage.waits[index].set_result(None)
        await asyncio.sleep(0)  # the done-callback pulls the next fragment
        assert len(storage.fragments) == min(index + 2, 10)
    assert [bytes(f.data) for f in storage.fragments] == [piece] * 10
    assert [f.is_last for f in storage.fragments] == [False] * 9 + [True]
    assert inner.conn.buffered == 0
    assert transport.pauses == 1 and transport.resumes == 1  # resumed below low water


async def test_reading_pauses_while_the_peer_reads_none_of_ours(established: Any) -> None:
    protocol, inner, transport, storage = established
    inner.pause_writing()
    assert transport.pauses == 1
    inner.resume_writing()
    assert transport.resumes == 1
    read(protocol, pdata(1, False, True, b"\x00" * 64))
    assert len(storage.fragments) == 1
    storage.waits[0].set_result(None)
    await asyncio.sleep(0)
    assert transport.pauses == 1 and transport.resumes == 1  # nothing to regulate


async def test_an_abort_of_the_peer_closes_the_transport(established: Any) -> None:
    protocol, _, transport, storage = established
    read(protocol, bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0]))  # A-ABORT
    assert transport.closing
    assert storage.fragments == []
    assert [type(e).__name__ for e in storage.others] == ["PeerAborted", "ConnectionClosed"]
    assert storage.association.ended  # and the association ended with it
