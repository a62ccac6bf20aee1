"""A DICOM peer on a raw socket, built on our own encoder: it can send anything.

The fault tests use it for what no well-behaved toolkit sends (garbage, truncated or
oversized PDUs, hostile AE titles) and to read exactly what the receiver answers.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from oxidicom.app.echo import receive_exactly
from oxidicom.dimse.commands import CommandField, decode_response_status, encode_request
from oxidicom.ul import pdu as ul

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
#: Bound on every blocking read: a safety net, never the synchronisation itself.
READ_TIMEOUT = 30.0


def associate_rq(
    calling: str = "RAWPEER",
    contexts: tuple[tuple[str, str], ...] = ((VERIFICATION, IMPLICIT_LE),),
    max_length: int = 16384,
) -> bytes:
    return ul.encode(
        ul.AssociateRQ(
            called_ae_title="ChRIS",
            calling_ae_title=calling,
            application_context="1.2.840.10008.3.1.1.1",
            presentation_contexts=tuple(
                ul.PresentationContextRQ(2 * i + 1, abstract, (transfer,))
                for i, (abstract, transfer) in enumerate(contexts)
            ),
            user_information=ul.UserInformation(
                maximum_length=max_length, implementation_class_uid="1.2.826.0.1.3680043.9.1"
            ),
        )
    )


def pdata(context_id: int, is_command: bool, is_last: bool, data: bytes) -> bytes:
    return ul.encode(ul.PDataTF((ul.PresentationDataValue(context_id, is_command, is_last, data),)))


def message(context_id: int, command: bytes, dataset: bytes | None, max_pdv: int) -> bytes:
    """A DIMSE message as P-DATA-TF PDUs, each PDV at most ``max_pdv`` bytes of data."""
    out = [pdata(context_id, True, True, command)]
    if dataset is not None:
        for start in range(0, max(len(dataset), 1), max_pdv):
            piece = dataset[start : start + max_pdv]
            out.append(pdata(context_id, False, start + max_pdv >= len(dataset), piece))
    return b"".join(out)


@dataclass
class RawPeer:
    """One TCP connection to the receiver."""

    sock: socket.socket
    received: list[ul.PDU] = field(default_factory=list)

    @classmethod
    def connect(cls, port: int, source: str | None = None, host: str = "127.0.0.1") -> RawPeer:
        """Connect to the receiver on ``host`` (127.0.0.1), from ``source`` (another
        loopback address such as 127.0.0.2 is another host to the receiver)."""
        sock = socket.create_connection(
            (host, port),
            timeout=READ_TIMEOUT,
            source_address=(source, 0) if source is not None else None,
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_pdu(self) -> ul.PDU | None:
        """The next PDU, or None at EOF (or a reset: both mean the receiver closed)."""
        header = self._read_exactly(6)
        if header is None:
            return None
        _, length = ul.parse_pdu_header(header)
        body = self._read_exactly(length)
        assert body is not None, "connection closed inside a PDU"
        pdu = ul.parse_pdu(header + body)
        self.received.append(pdu)
        return pdu

    def read_until_closed(self) -> list[ul.PDU]:
        """Every PDU until the receiver closes the connection."""
        pdus = []
        while (pdu := self.read_pdu()) is not None:
            pdus.append(pdu)
        return pdus

    def associate(self, request: bytes | None = None) -> ul.AssociateAC:
        self.send(request or associate_rq())
        answer = self.read_pdu()
        assert isinstance(answer, ul.AssociateAC), answer
        return answer

    def c_echo(self, message_id: int = 1, context_id: int = 1) -> int:
        command = encode_request(
            CommandField.C_ECHO_RQ, message_id, affected_sop_class_uid=VERIFICATION
        )
        self.send(pdata(context_id, True, True, command))
        return self.response_status()

    def c_store(
        self,
        dataset: bytes,
        sop_instance_uid: str,
        *,
        message_id: int = 1,
        context_id: int = 1,
        sop_class_uid: str = MR_STORAGE,
        max_pdv: int = 16000,
    ) -> int:
        command = encode_request(
            CommandField.C_STORE_RQ,
            message_id,
            affected_sop_class_uid=sop_class_uid,
            affected_sop_instance_uid=sop_instance_uid,
            has_dataset=True,
            priority=0,
        )
        self.send(message(context_id, command, dataset, max_pdv))
        return self.response_status()

    def response_status(self) -> int:
        answer = self.read_pdu()
        assert isinstance(answer, ul.PDataTF), answer
        command = b"".join(v.data for v in answer.values if v.is_command)
        return decode_response_status(command)[2]

    def release(self) -> None:
        self.send(ul.encode(ul.ReleaseRQ()))
        assert isinstance(self.read_pdu(), ul.ReleaseRP)
        assert self.read_pdu() is None

    def _read_exactly(self, size: int) -> bytes | None:
        data = receive_exactly(self.sock, size, reset_is_close=True)
        if len(data) < size:
            assert not data, f"connection closed after {len(data)} of {size} bytes"
            return None
        return data


def dataset_of(part10: bytes) -> bytes:
    """The data set of a Part-10 file (what a C-STORE carries)."""
    (meta_length,) = struct.unpack_from("<I", part10, 140)
    return part10[144 + meta_length :]


def wait_until_closed(peers: Sequence[RawPeer], count: int) -> list[RawPeer]:
    """Wait until the receiver has closed ``count`` of ``peers`` without a word (each
    read to its end, as it closes); those, in the order of ``peers``. Fails if another
    PDU arrives, or if fewer close within :data:`READ_TIMEOUT`."""
    closed = wait_until_sockets_closed([peer.sock for peer in peers], count)
    return [peer for peer in peers if peer.sock in closed]


def wait_until_sockets_closed(socks: Sequence[socket.socket], count: int) -> list[socket.socket]:
    """Wait until the receiver has closed ``count`` of ``socks`` (end of stream, or a
    reset) without sending a byte; those, in the order of ``socks``. Fails if a byte
    arrives, or if fewer close within :data:`READ_TIMEOUT`."""
    deadline = time.monotonic() + READ_TIMEOUT
    closed: set[int] = set()
    with selectors.DefaultSelector() as selector:
        for index, sock in enumerate(socks):
            selector.register(sock, selectors.EVENT_READ, index)
        while len(closed) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"{len(closed)} of the {count} connections expected closed were"
            for key, _ in selector.select(left):
                # Closed by a reset is as good as an end of stream.
                with contextlib.suppress(ConnectionResetError):
                    assert socks[key.data].recv(1) == b"", "a byte before the close"
                selector.unregister(key.fileobj)
                closed.add(key.data)
    return [sock for index, sock in enumerate(socks) if index in closed]
