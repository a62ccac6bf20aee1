"""TCP_QUICKACK: set once after each thing we send, on the first read it does not answer.

A sender that leaves Nagle's algorithm on (Debian's storescu, Orthanc) waits for the
ACK of what it sent before sending the rest of a message, and Linux delays that ACK in
its interactive (pingpong) mode, which a socket enters when it sends. TCP_QUICKACK
leaves that mode (and sends the ACK due); the socket stays out of it until we send
again, so one setsockopt per response is enough, where one per read was made before
(the ct set: 2.5 a C-STORE, against none for dcmtk's storescp).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from oxidicom.aio.context import ScopedProtocol
from oxidicom.aio.protocol import AssociationProtocolPy
from oxidicom.dimse.commands import CommandField, encode_request
from oxidicom.scp.services import ScpService
from tests.aio.reads import read
from tests.dicom_factory import mr_instance
from tests.integration.raw_peer import EXPLICIT_LE, MR_STORAGE, associate_rq, pdata

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux's"
)


class _Transport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.writes = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 4242), "socket": self.sock}.get(name, default)

    def write(self, data: bytes) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Recorder:
    """Stands for the socket TCP_QUICKACK is set on."""

    def __init__(self) -> None:
        self.quickacks = 0

    def setsockopt(self, level: int, option: int, value: int) -> None:
        assert (level, option, value) == (socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        self.quickacks += 1

    def detach(self) -> int:
        return -1


def _store_request(index: int) -> tuple[bytes, bytes]:
    """(command PDU, data set PDU) of one C-STORE-RQ."""
    ds = mr_instance(instance_number=index + 1)
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = False
    buffer.is_little_endian = True
    write_dataset(buffer, ds)
    command = encode_request(
        CommandField.C_STORE_RQ,
        index + 1,
        affected_sop_class_uid=MR_STORAGE,
        affected_sop_instance_uid=str(ds.SOPInstanceUID),
        has_dataset=True,
        priority=0,
    )
    return pdata(1, True, True, command), pdata(1, False, True, buffer.getvalue())


async def test_one_quickack_per_response_whatever_the_reads(
    service: ScpService, shell: type[AssociationProtocolPy]
) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        transport = _Transport(sock)
        inner = shell(service)
        protocol = ScopedProtocol(inner)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        recorder = _Recorder()
        inner._close_quickack()
        inner._quickack = recorder  # type: ignore[assignment]
        read(protocol, associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
        assert transport.writes == 1  # A-ASSOCIATE-AC: the read was answered
        assert recorder.quickacks == 0
        for index in range(3):
            command, dataset = _store_request(index)
            # The command alone, then the data set in four reads: only the last is
            # answered (C-STORE-RSP).
            read(protocol, command)
            quarter = len(dataset) // 4
            for start in range(0, 3 * quarter, quarter):
                read(protocol, dataset[start : start + quarter])
                await asyncio.sleep(0)
            assert recorder.quickacks == index + 1  # the command's read, once
            read(protocol, dataset[3 * quarter :])
            await asyncio.sleep(0)
            assert transport.writes == index + 2  # answered: no QUICKACK needed
            assert recorder.quickacks == index + 1
    finally:
        protocol.connection_lost(None)  # the association ends: process-wide tallies too
        sock.close()
