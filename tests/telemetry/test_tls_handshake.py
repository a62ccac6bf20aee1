"""The TLS listener's own handshake (oxidicom/aio/tls.py) on the standard asyncio loop.

The integration tests run the receiver on uvloop; without uvloop it runs on asyncio,
whose transports start reading at another moment: the handshake must work there too,
and count as a pending connection from the TCP accept.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from oxidicom import telemetry
from oxidicom.aio.server import Receiver
from tests.integration.conftest import require_tool
from tests.integration.tls_certs import OPENSSL, KeyPair, make_ca, make_leaf
from tests.telemetry.helpers import echo_request, in_process_receiver


@pytest.fixture(scope="module")
def server_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeyPair, KeyPair]:
    require_tool(OPENSSL)
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory, "ca")
    return ca, make_leaf(ca, directory, "server", server=True)


async def _associate_over_tls(receiver: Receiver, ca: KeyPair) -> bytes:
    client = ssl.create_default_context(cafile=str(ca.cert))
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", receiver.port, ssl=client, server_hostname="127.0.0.1"
    )
    try:
        writer.write(echo_request("TLSPEER"))
        header = await reader.readexactly(6)
        await reader.readexactly(int.from_bytes(header[2:6], "big"))
        return header[:1]
    finally:
        writer.close()


async def test_idle_connections_in_the_handshake_are_evicted_and_tls_works(
    tmp_path: Path, server_pair: tuple[KeyPair, KeyPair]
) -> None:
    ca, server = server_pair
    evicted_before = telemetry.TALLIES.connections_evicted
    async with in_process_receiver(
        tmp_path,
        OXIDICOM_TLS_CERTIFICATE=str(server.cert),
        OXIDICOM_TLS_KEY=str(server.key),
        OXIDICOM_MAX_PENDING_CONNECTIONS="2",
        OXIDICOM_ARTIM_TIMEOUT="300s",
    ) as receiver:
        assert await _associate_over_tls(receiver, ca) == b"\x02"  # A-ASSOCIATE-AC
        idle = [await asyncio.open_connection("127.0.0.1", receiver.port) for _ in range(5)]
        for reader, _ in idle[:3]:
            # No ClientHello: the oldest three are closed (not left to the 300 s timeout).
            assert await asyncio.wait_for(reader.read(), 30) == b""
        assert receiver.context.pending_connections <= 2
        assert await _associate_over_tls(receiver, ca) == b"\x02"  # and TLS still works
        for _, writer in idle:
            writer.close()
    assert telemetry.TALLIES.connections_evicted - evicted_before >= 3
