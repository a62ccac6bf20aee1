"""SIGTERM under load: running associations finish (bounded), new ones are refused,
every file that got a success status is at its final path, the process exits 0, and
every series with stored files is reported.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from oxidicom.ul import pdu as ul
from oxidicom.ul.constants import PresentationRejectReason, RejectResult, RejectSource
from tests.integration.conftest import require_tool
from tests.integration.raw_peer import RawPeer, associate_rq
from tests.integration.receiver import start_receiver

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"
SENDERS = 3
FILES_PER_SENDER = 96


def reported_series(log: str) -> dict[str, int]:
    """calling AE -> files reported by the 'series finished' lines (today's LogNotifier).

    After the notify merge: check the registrations (sent or in the outbox) instead.
    """
    counts: dict[str, int] = {}
    for match in re.finditer(r"series finished: (\d+) file\(s\) of \S+ from (\S+)", log):
        counts[match.group(2)] = counts.get(match.group(2), 0) + int(match.group(1))
    return counts


def test_sigterm_during_a_flood(tmp_path: Path, sample_data: Path) -> None:
    require_tool(STORESCU)
    files = sorted((sample_data / "SAG-anon").glob("*.dcm"))[:FILES_PER_SENDER]
    receiver = start_receiver(
        tmp_path, {"OXIDICOM_SHUTDOWN_TIMEOUT": "60s", "OXIDICOM_LOG_LEVEL": "INFO"}
    )
    senders = [
        subprocess.Popen(
            [STORESCU, "-aet", f"FLOOD{n}", "-aec", "ChRIS", "127.0.0.1", str(receiver.port)]
            + [str(f) for f in files],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        for n in range(SENDERS)
    ]
    try:
        with RawPeer.connect(receiver.port) as late:
            # Every sender is associated and has stored something: the flood is on.
            for n in range(SENDERS):
                receiver.wait_for_log(rf"association from FLOOD{n}@")
            receiver.process.send_signal(signal.SIGTERM)
            waiting = receiver.wait_for_log(
                r"waiting up to 60 s for (\d+) connection\(s\) to finish"
            )
            # The senders and the late peer were all still connected: the flood was on.
            assert int(waiting.group(1)) == SENDERS + 1
            # The listening socket is closed: a new connection is refused by the kernel...
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", receiver.port), timeout=10)
            # ...and one that was already open is rejected, transient, when it asks.
            late.send(associate_rq())
            assert late.read_pdu() == ul.AssociateRJ(
                RejectResult.TRANSIENT,
                RejectSource.SERVICE_PROVIDER_PRESENTATION,
                PresentationRejectReason.LOCAL_LIMIT_EXCEEDED,
            )
        outputs = [s.communicate(timeout=120)[0] for s in senders]
    finally:
        for sender in senders:
            if sender.poll() is None:
                sender.kill()
    assert [s.returncode for s in senders] == [0] * SENDERS, outputs
    # It exits by itself, with status 0, once the associations are done.
    assert receiver.process.wait(120) == 0
    receiver.stop()
    log = receiver.log()
    assert re.search(r"\bstopped$", log, re.M)
    # storescu exits 0 only when every file got a success status: all are in place.
    stored = receiver.stored_files()
    assert len(stored) == SENDERS * FILES_PER_SENDER
    assert reported_series(log) == {f"FLOOD{n}": FILES_PER_SENDER for n in range(SENDERS)}
    assert "Traceback" not in log


def test_sigterm_aborts_what_outlives_the_shutdown_timeout(tmp_path: Path) -> None:
    receiver = start_receiver(tmp_path, {"OXIDICOM_SHUTDOWN_TIMEOUT": "1s"})
    with RawPeer.connect(receiver.port) as stuck:
        stuck.associate()
        assert stuck.c_echo() == 0x0000
        receiver.process.send_signal(signal.SIGTERM)
        # It never releases: after the timeout it gets one A-ABORT and the close.
        assert stuck.read_until_closed() == [ul.Abort(0, 0)]
    assert receiver.process.wait(60) == 0
    receiver.stop()
    receiver.wait_for_log(r"aborting 1 association\(s\) still running")
