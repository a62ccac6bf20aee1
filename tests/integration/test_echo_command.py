"""``oxidicom echo``: the container's health check, and a DICOM ping for people."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from tests.integration.receiver import RunningReceiver, start_receiver
from tests.telemetry.helpers import echo_request

pytestmark = pytest.mark.integration


def oxidicom_echo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OXIDICOM_")}
    return subprocess.run(
        [sys.executable, "-m", "oxidicom", "echo", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
    )


def test_echo_answers_zero_and_one_line(receiver: RunningReceiver) -> None:
    result = oxidicom_echo("127.0.0.1", str(receiver.port))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert re.fullmatch(
        rf"C-ECHO ChRIS@127\.0\.0\.1:{receiver.port}: success \(status 0000, [\d.]+ ms\)\n",
        result.stdout,
    )
    receiver.wait_for_log(r"association from OXIDICOM-ECHO@127\.0\.0\.1:\d+ -> ChRIS accepted")
    receiver.wait_for_log(r"association ended \(released\)")


def test_defaults_reach_the_receiver_as_configured(tmp_path: Path) -> None:
    running = start_receiver(tmp_path, {"OXIDICOM_SCP_AET": "HOSPITALRX"})
    try:
        result = oxidicom_echo(
            "--aet",
            "NURSE",
            OXIDICOM_LISTENER_PORT=str(running.port),
            OXIDICOM_SCP_AET="HOSPITALRX",
        )
        running.wait_for_log(r"association from NURSE@127\.0\.0\.1:\d+ -> HOSPITALRX accepted")
    finally:
        running.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"C-ECHO HOSPITALRX@127.0.0.1:{running.port}: success")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_nothing_listening_is_a_clear_failure() -> None:
    port = _closed_port()
    result = oxidicom_echo("127.0.0.1", str(port))
    assert result.returncode == 1
    assert result.stdout == ""
    assert (
        result.stderr == f"oxidicom echo: cannot connect to 127.0.0.1:{port}: Connection refused\n"
    )


def test_a_silent_peer_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; nobody ever answers
        port = silent.getsockname()[1]
        result = oxidicom_echo("--timeout", "0.5", "127.0.0.1", str(port))
    assert result.returncode == 1
    assert result.stderr == (f"oxidicom echo: ChRIS@127.0.0.1:{port} did not answer within 0.5 s\n")


def test_busy_receiver_fails_unless_busy_is_ok(tmp_path: Path) -> None:
    # The holder sends nothing: without MIN_TRANSFER_RATE=0 it could be preempted (after
    # 2 s) for the second echo, which must find the receiver busy.
    running = start_receiver(
        tmp_path, {"OXIDICOM_LISTENER_THREADS": "1", "OXIDICOM_MIN_TRANSFER_RATE": "0"}
    )
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as holder:
            holder.sendall(echo_request("HOLDER"))
            assert holder.recv(1) == b"\x02"  # A-ASSOCIATE-AC: the only slot is taken
            busy = oxidicom_echo("127.0.0.1", str(running.port))
            alive = oxidicom_echo("--busy-ok", "127.0.0.1", str(running.port))
    finally:
        running.stop()
    assert busy.returncode == 1
    assert busy.stderr == (
        f"oxidicom echo: ChRIS@127.0.0.1:{running.port} rejected the association: transient,"
        " source service provider presentation, reason local limit exceeded\n"
    )
    assert alive.returncode == 0
    assert alive.stdout.startswith("busy but alive: ")


@pytest.fixture
def pynetdicom_scp() -> Iterator[tuple[int, list[int]]]:
    """A pynetdicom Verification SCP (another implementation) answering a chosen status."""
    status = [0x0000]
    ae = AE(ae_title="PYSCP")
    ae.add_supported_context(Verification)
    ae.require_called_aet = True
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[(evt.EVT_C_ECHO, lambda event: status[0])],
    )
    yield server.server_address[1], status
    server.shutdown()


def test_echo_another_implementation(pynetdicom_scp: tuple[int, list[int]]) -> None:
    port, status = pynetdicom_scp
    ok = oxidicom_echo("--aec", "PYSCP", "127.0.0.1", str(port))
    assert ok.returncode == 0, ok.stderr
    status[0] = 0x0122
    refused = oxidicom_echo("--aec", "PYSCP", "127.0.0.1", str(port))
    assert refused.returncode == 1
    assert refused.stderr == (
        f"oxidicom echo: PYSCP@127.0.0.1:{port} answered C-ECHO with status 0122\n"
    )
    wrong_title = oxidicom_echo("--aec", "SOMEONE", "127.0.0.1", str(port))
    assert wrong_title.returncode == 1
    assert "rejected the association: permanent, source service user," in wrong_title.stderr
    assert "called ae title not recognized" in wrong_title.stderr
