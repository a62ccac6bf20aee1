"""Slow, stalled and deaf peers against the real process.

- A peer that sends requests and never reads the responses is paused (the receiver
  stops reading while it cannot write) and cut off by the idle timeout.
- A flood of idle connections is logged as one line and a count, not one line each.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxidicom.dimse.commands import CommandField, encode_request
from tests.integration.conftest import echoscu, require_tool
from tests.integration.raw_peer import (
    RawPeer,
    pdata,
)
from tests.integration.receiver import RunningReceiver, start_receiver

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


@pytest.fixture
def tuned(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningReceiver]:
    running = start_receiver(tmp_path, request.param)
    yield running
    assert running.stop() == 0
    assert "Traceback" not in running.log()


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


# -- a peer that never reads ---------------------------------------------------------------


@pytest.mark.parametrize("tuned", [{"OXIDICOM_IDLE_TIMEOUT": "2s"}], indirect=True)
def test_a_peer_that_never_reads_costs_bounded_memory_and_is_cut_off(
    tuned: RunningReceiver,
) -> None:
    pid = tuned.process.pid
    before = memory_kib(pid, "VmRSS")
    sock = socket.socket()
    # A small receive window: the receiver's responses fill it, and then its own buffer.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", tuned.port))
    peer = RawPeer(sock)
    peer.associate()
    echo = pdata(1, True, True, encode_request(CommandField.C_ECHO_RQ, 1))
    batch = echo * (64 * 1024 // len(echo))
    goal = 200 * MIB
    sent = 0
    outcome: list[BaseException] = []

    def send_and_never_read() -> None:
        nonlocal sent
        try:
            while sent < goal:
                sock.sendall(batch)
                sent += len(batch)
        except OSError as error:
            outcome.append(error)

    sender = threading.Thread(target=send_and_never_read, daemon=True)
    sender.start()
    # The sender blocks once the receiver stops reading, and ends when it is cut off.
    sender.join(120)
    sock.close()
    assert not sender.is_alive(), "the receiver never cut off a peer that does not read"
    assert outcome and isinstance(outcome[0], ConnectionResetError | BrokenPipeError), (
        f"{sent / MIB:.0f} MiB sent, {outcome}"
    )
    assert sent < goal
    # The receiver's peak memory: its write buffer and one read, not what was sent.
    assert memory_kib(pid, "VmHWM") - before < 32 * 1024, (
        f"RSS {before} KiB before, peak {memory_kib(pid, 'VmHWM')} KiB after {sent / MIB:.0f} MiB"
    )
    tuned.wait_for_log(r"has not read our responses for 2 s: closing the connection")
    tuned.wait_for_log(r"association ended \(aborted: no complete PDU for 2 s\)")
    require_tool("/usr/bin/echoscu")
    assert echoscu(tuned.port).returncode == 0  # and everyone else is still served


# -- a flood of idle connections ---------------------------------------------------------------


@pytest.mark.parametrize("tuned", [{"OXIDICOM_MAX_PENDING_CONNECTIONS": "10"}], indirect=True)
def test_a_flood_of_idle_connections_is_logged_as_a_count(tuned: RunningReceiver) -> None:
    flood = [RawPeer.connect(tuned.port) for _ in range(300)]
    try:
        for peer in flood[:290]:
            assert peer.read_until_closed() == []  # evicted, oldest first
    finally:
        for peer in flood:
            peer.close()
    assert tuned.stop() == 0  # the last count is logged at shutdown
    log = tuned.log()
    first = re.findall(r"closing connection from \S+: more than 10 connections", log)
    counts = [int(n) for n in re.findall(r"closed (\d+) more connection\(s\)", log)]
    assert len(first) == 1
    assert 1 <= len(counts) <= 3
    assert len(first) + sum(counts) == 290
