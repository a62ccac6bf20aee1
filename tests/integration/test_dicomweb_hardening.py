"""The DICOMweb listener against hostile HTTP peers (issue 20): what each may cost.

Each test runs the real receiver process and real clients (dcmtk's storescu, curl or
http.client), and breaks one promise of the README's robustness section: bounded
descriptors and time per connection, a STOW slot not held by a slow body, a request's
cost bounded by configuration, password checks shared fairly.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from tests.dicom_factory import mr_instance, write_part10
from tests.dicomweb_helpers import multipart, part10
from tests.integration.conftest import require_tool
from tests.integration.dicomweb import (
    StowReceiver,
    post,
    referenced_and_failed,
    start_stow_receiver,
)

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"
PRLIMIT = "/usr/bin/prlimit"
STOW = "/dicom-web/studies"


def storescu(port: int, path: Path) -> subprocess.CompletedProcess[str]:
    require_tool(STORESCU)
    return subprocess.run(
        [STORESCU, "-aet", "HARDENING", "-aec", "ChRIS", "127.0.0.1", str(port), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TCP_NODELAY": "1"},
    )


@contextlib.contextmanager
def raised_own_limit(needed: int) -> Iterator[None]:
    """This test process opens many sockets: its soft limit up to ``needed`` (or hard)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_connections(port: int, count: int, first_bytes: bytes) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        if first_bytes:
            sock.sendall(first_bytes)
        sockets.append(sock)
    return sockets


def receiver_with_limit(tmp: Path, soft: int, env: dict[str, str] | None = None) -> StowReceiver:
    """The receiver under a soft *and* hard descriptor limit of ``soft`` (it cannot raise it)."""
    require_tool(PRLIMIT)
    command = [PRLIMIT, f"--nofile={soft}:{soft}", sys.executable, "-m", "oxidicom"]
    return start_stow_receiver(tmp, {"OXIDICOM_FSYNC": "false", **(env or {})}, command)


# -- 1. connections cost bounded descriptors and time -------------------------------------


def test_dimse_and_stow_get_through_while_more_idle_http_connections_than_descriptors(
    tmp_path: Path,
) -> None:
    """At a descriptor limit of 256, 400 HTTP connections that send nothing or half a
    request line: a real storescu and a real STOW-RS client are served all the same."""
    instance = write_part10(mr_instance(), tmp_path / "one.dcm")
    body, content_type = multipart([part10(mr_instance(instance_number=2))])
    running = receiver_with_limit(tmp_path / "rx", 256)
    flood: list[socket.socket] = []
    try:
        running.receiver.wait_for_log(r"descriptor limit 256 \(hard 256\)")
        with raised_own_limit(4096):
            flood += open_connections(running.http_port, 200, b"")
            flood += open_connections(running.http_port, 200, b"POST /dicom-web/stu")
            running.receiver.wait_for_log(r"closing HTTP connection from .*: more than")
            sent = storescu(running.receiver.port, instance)
            assert sent.returncode == 0, (sent.stdout, sent.stderr, running.receiver.log())
            answer = post(running.http_port, STOW, body, {"Content-Type": content_type})
            assert answer.status == 200, answer.body
        assert len(running.stored_files()) == 2
    finally:
        for sock in flood:
            sock.close()
        assert running.receiver.stop() == 0


def test_a_connection_that_never_completes_its_headers_is_closed(tmp_path: Path) -> None:
    running = start_stow_receiver(
        tmp_path,
        {"OXIDICOM_DICOMWEB_HEADER_TIMEOUT": "1s", "OXIDICOM_DICOMWEB_KEEPALIVE_TIMEOUT": "1s"},
    )
    try:
        with socket.create_connection(("127.0.0.1", running.http_port), timeout=30) as sock:
            sock.sendall(b"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\n")  # and no more
            assert sock.recv(1024) == b""  # closed by the receiver (else: a timeout)
        running.receiver.wait_for_log(r"no complete request headers within 1 s")
        # After a response, the connection waits for the next request for as long.
        body, content_type = multipart([part10(mr_instance())])
        with socket.create_connection(("127.0.0.1", running.http_port), timeout=30) as sock:
            head = (
                f"POST {STOW} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            received = b""
            while chunk := sock.recv(65536):  # the answer, then the close
                received += chunk
            assert received.startswith(b"HTTP/1.1 200"), received[:200]
    finally:
        assert running.receiver.stop() == 0


# -- 2. a STOW slot is not held by a slow body --------------------------------------------


def stow_head(body: bytes, content_type: str) -> bytes:
    return (
        f"POST {STOW} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()


def post_until_served(port: int, body: bytes, content_type: str, attempts: int = 30) -> int:
    """What a STOW client does with 503 and Retry-After: wait as told, try again."""
    for _ in range(attempts):
        answer = post(port, STOW, body, {"Content-Type": content_type})
        if answer.status != 503:
            return answer.status
        time.sleep(float(answer.headers["retry-after"]))  # the client's own pacing
    return 503


def test_a_trickling_body_gives_its_slot_to_a_waiting_client_and_gets_408(
    tmp_path: Path,
) -> None:
    running = start_stow_receiver(
        tmp_path, {"OXIDICOM_LISTENER_THREADS": "1", "OXIDICOM_FSYNC": "false"}
    )
    try:
        slow_body, content_type = multipart([part10(mr_instance(instance_number=1))], "slow")
        with socket.create_connection(("127.0.0.1", running.http_port), timeout=60) as slow:
            slow.sendall(stow_head(slow_body, content_type) + slow_body[:100])  # then nothing
            running.receiver.wait_for_log(r"STOW-RS request from")
            body, content_type = multipart([part10(mr_instance(instance_number=2))])
            assert post_until_served(running.http_port, body, content_type) == 200
            answer = b""
            while chunk := slow.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
        running.receiver.wait_for_log(r"preempted: .* below OXIDICOM_MIN_TRANSFER_RATE")
        assert len(running.stored_files()) == 1
    finally:
        assert running.receiver.stop() == 0


# -- 3. a request's cost is bounded by configuration ---------------------------------------


def test_a_request_of_more_parts_than_allowed_ends_with_413_and_few_log_lines(
    tmp_path: Path,
) -> None:
    running = start_stow_receiver(
        tmp_path, {"OXIDICOM_DICOMWEB_MAX_PARTS": "50", "OXIDICOM_FSYNC": "false"}
    )
    try:
        good = mr_instance(instance_number=1)
        body, content_type = multipart([part10(good)] + [b"not DICOM"] * 500)
        answer = post(running.http_port, STOW, body, {"Content-Type": content_type})
        assert answer.status == 413
        stored, failed = referenced_and_failed(answer.json())
        assert stored == [good.SOPInstanceUID] and failed == [0xC000] * 49
        running.receiver.wait_for_log(r"STOW-RS request ended \(more than 50 parts")
        refused = [line for line in running.receiver.lines if "refused" in line]
        # Ten refused parts one by one, then one line counting the other 39.
        assert len(refused) == 11, refused
        assert "39 more part(s) refused (39 x C000)" in refused[-1]
        assert len(running.stored_files()) == 1
    finally:
        assert running.receiver.stop() == 0


# -- 4. password checks shared fairly -------------------------------------------------------


def post_as(
    port: int, source: str, user: str, password: str, body: bytes, content_type: str
) -> tuple[int, str | None]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=60, source_address=(source, 0)
    )
    try:
        connection.request(
            "POST",
            STOW,
            body=body,
            headers={"Content-Type": content_type, "Authorization": f"Basic {token}"},
        )
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After")
    finally:
        connection.close()


def test_a_guessing_address_is_refused_for_a_while_and_a_user_elsewhere_gets_in(
    tmp_path: Path,
) -> None:
    users = tmp_path / "users"
    weak = bcrypt.hashpw(b"right", bcrypt.gensalt(4)).decode()
    users.write_text(f"LABPACS:{weak}\n")
    running = start_stow_receiver(
        tmp_path / "rx", {"OXIDICOM_DICOMWEB_USERS_FILE": str(users), "OXIDICOM_FSYNC": "false"}
    )
    try:
        running.receiver.wait_for_log(r"the password hash of LABPACS is cheap to guess")
        body, content_type = multipart([part10(mr_instance())])
        answers = [
            post_as(running.http_port, "127.0.0.2", "LABPACS", f"guess{n}", body, content_type)
            for n in range(30)
        ]
        statuses = [status for status, _ in answers]
        assert statuses[:5] == [401] * 5
        assert set(statuses[5:]) == {429}, statuses
        assert all(int(retry) >= 1 for status, retry in answers if status == 429)
        # The same user, from another address, during the lockout of the first.
        status, _ = post_as(running.http_port, "127.0.0.1", "LABPACS", "right", body, content_type)
        assert status == 200
        refused = [line for line in running.receiver.lines if "refused" in line]
        assert len(refused) <= 4, refused  # once per address and status, then counted
    finally:
        assert running.receiver.stop() == 0


def test_an_https_connection_that_never_sends_a_client_hello_is_closed(tmp_path: Path) -> None:
    """Pending from its TCP accept on, as the DICOM TLS listener's: not 60 s of asyncio's
    handshake timeout, during which nothing would count it."""
    from tests.integration.tls_certs import make_ca, make_leaf

    ca = make_ca(tmp_path / "certs", "test-ca")
    server = make_leaf(ca, tmp_path / "certs", "server", server=True)
    running = start_stow_receiver(
        tmp_path / "rx",
        {
            "OXIDICOM_TLS_CERTIFICATE": str(server.cert),
            "OXIDICOM_TLS_KEY": str(server.key),
            "OXIDICOM_DICOMWEB_HEADER_TIMEOUT": "1s",
        },
    )
    try:
        with socket.create_connection(("127.0.0.1", running.http_port), timeout=30) as sock:
            try:
                closed = sock.recv(1024) == b""
            except ConnectionResetError:
                closed = True
        assert closed
        running.receiver.wait_for_log(r"no complete request headers within 1 s")
    finally:
        assert running.receiver.stop() == 0
