"""DICOM TLS (PS3.15 B.1): dcmtk's echoscu/storescu over TLS, with and without client
certificates required. Certificates are made for each run with the openssl CLI.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oxidicom.ul import pdu as ul
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.conftest import require_tool
from tests.integration.raw_peer import RawPeer, associate_rq, wait_until_sockets_closed
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.test_limits import open_sockets
from tests.integration.tls_certs import OPENSSL, KeyPair, make_ca, make_leaf

pytestmark = pytest.mark.integration

ECHOSCU = "/usr/bin/echoscu"
STORESCU = "/usr/bin/storescu"


@dataclass(frozen=True)
class Pki:
    ca: KeyPair
    server: KeyPair
    client: KeyPair
    rogue_client: KeyPair


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    require_tool(OPENSSL)
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory, "test-ca")
    rogue_ca = make_ca(directory, "rogue-ca")
    return Pki(
        ca=ca,
        server=make_leaf(ca, directory, "server", server=True),
        client=make_leaf(ca, directory, "client", server=False),
        rogue_client=make_leaf(rogue_ca, directory, "rogue", server=False),
    )


def tls_env(pki: Pki, mutual: bool) -> dict[str, str]:
    env = {
        "OXIDICOM_TLS_CERTIFICATE": str(pki.server.cert),
        "OXIDICOM_TLS_KEY": str(pki.server.key),
    }
    if mutual:
        env["OXIDICOM_TLS_CLIENT_CA"] = str(pki.ca.cert)
    return env


@pytest.fixture
def mutual_tls(pki: Pki, tmp_path: Path) -> Iterator[RunningReceiver]:
    receiver = start_receiver(tmp_path, tls_env(pki, mutual=True))
    yield receiver
    assert receiver.stop() == 0
    assert "Traceback" not in receiver.log()


def dcmtk(tool: str, receiver: RunningReceiver, *args: str | Path) -> subprocess.CompletedProcess:
    require_tool(tool)
    return subprocess.run(
        [tool, "-aet", "TLSPACS", "-aec", "ChRIS", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def echo(receiver: RunningReceiver, *tls: str | Path) -> subprocess.CompletedProcess:
    return dcmtk(ECHOSCU, receiver, *tls, "127.0.0.1", str(receiver.port))


def tls_peer(receiver: RunningReceiver, pki: Pki, client: KeyPair | None) -> RawPeer:
    """Our raw peer over TLS (Python's ssl), with or without a client certificate."""
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    raw = socket.create_connection(("127.0.0.1", receiver.port), timeout=30)
    return RawPeer(context.wrap_socket(raw, server_hostname="127.0.0.1"))


def test_mutual_tls_echo_and_store_with_dcmtk(
    mutual_tls: RunningReceiver, pki: Pki, tmp_path: Path
) -> None:
    mutual_tls.wait_for_log(r"listening on 127\.0\.0\.1:\d+ \(DICOM TLS\)")
    credentials = ("+tls", pki.client.key, pki.client.cert, "+cf", pki.ca.cert)
    result = echo(mutual_tls, *credentials)
    assert result.returncode == 0, result.stderr
    ds = mr_instance()
    path = write_part10(ds, tmp_path / "one.dcm")
    result = dcmtk(STORESCU, mutual_tls, *credentials, "127.0.0.1", str(mutual_tls.port), path)
    assert result.returncode == 0, result.stderr
    [stored] = mutual_tls.stored_files()
    assert stored.name.endswith(f"-{ds.SOPInstanceUID}.dcm")


def test_clients_without_a_valid_certificate_are_refused(
    mutual_tls: RunningReceiver, pki: Pki
) -> None:
    # dcmtk with a certificate from another CA, dcmtk without any, and plain TCP.
    rogue = echo(
        mutual_tls, "+tls", pki.rogue_client.key, pki.rogue_client.cert, "+cf", pki.ca.cert
    )
    anonymous = echo(mutual_tls, "+tla", "+cf", pki.ca.cert)
    plain = echo(mutual_tls)
    for result in (rogue, anonymous, plain):
        assert result.returncode != 0, result.stdout
    # Python's TLS client without a certificate: the handshake fails, nothing DICOM happens.
    # With TLS 1.3 the client learns of it on its first read: an alert, or just the close.
    answer: ul.PDU | None
    try:
        with tls_peer(mutual_tls, pki, None) as peer:
            peer.send(associate_rq())
            answer = peer.read_pdu()
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        answer = None
    assert answer is None
    # The receiver is unharmed: a good client still gets in, and nothing was stored.
    good = echo(mutual_tls, "+tls", pki.client.key, pki.client.cert, "+cf", pki.ca.cert)
    assert good.returncode == 0, good.stderr
    assert mutual_tls.stored_files() == []


def test_server_only_tls_accepts_clients_without_certificates(pki: Pki, tmp_path: Path) -> None:
    receiver = start_receiver(tmp_path, tls_env(pki, mutual=False))
    try:
        with tls_peer(receiver, pki, None) as peer:
            peer.associate()
            assert peer.c_echo() == 0x0000
            peer.send(ul.encode(ul.ReleaseRQ()))
            assert isinstance(peer.read_pdu(), ul.ReleaseRP)
    finally:
        assert receiver.stop() == 0


def test_unusable_certificate_stops_the_start_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    env = {
        "OXIDICOM_TLS_CERTIFICATE": str(missing),
        "OXIDICOM_FILES_ROOT": str(tmp_path / "files"),
        "OXIDICOM_OUTBOX_DIR": str(tmp_path / "outbox"),
        "OXIDICOM_LISTENER_PORT": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "oxidicom"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"oxidicom: cannot use OXIDICOM_TLS_CERTIFICATE={str(missing)!r}"
        f" / OXIDICOM_TLS_KEY=None: No such file or directory"
    ]


def test_connections_in_the_tls_handshake_count_as_pending(pki: Pki, tmp_path: Path) -> None:
    # 300 connections that never send a ClientHello, with room for 10 pending ones, and
    # an ARTIM (the handshake's timeout) far beyond the test: only eviction closes them.
    env = {
        **tls_env(pki, mutual=True),
        "OXIDICOM_MAX_PENDING_CONNECTIONS": "10",
        "OXIDICOM_ARTIM_TIMEOUT": "300s",
    }
    receiver = start_receiver(tmp_path, env)
    pids = receiver.serving_pids()  # with several workers, 10 among them all
    credentials = ("+tls", pki.client.key, pki.client.cert, "+cf", pki.ca.cert)
    try:
        assert echo(receiver, *credentials).returncode == 0
        baseline = sum(open_sockets(pid) for pid in pids)
        flood = [socket.create_connection(("127.0.0.1", receiver.port)) for _ in range(300)]
        try:
            during = echo(receiver, *credentials)
            assert during.returncode == 0, during.stderr
            # All but 10 are closed as newer ones arrive (the oldest of each process's
            # part first; echoscu's handshake may close one more).
            wait_until_sockets_closed(flood, 290)
            # Up to 10 pending ones, and echoscu's, which may still be closing.
            now = sum(open_sockets(pid) for pid in pids)
            assert now <= baseline + 10 + 2, (baseline, now)
        finally:
            for sock in flood:
                sock.close()
        after = echo(receiver, *credentials)
        assert after.returncode == 0, after.stderr
    finally:
        assert receiver.stop() == 0
    log = receiver.log()
    assert "Traceback" not in log
    assert re.search(r"closing connection from 127\.0\.0\.1:\d+: more than 10 connections", log)
