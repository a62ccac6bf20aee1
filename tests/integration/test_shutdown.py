"""SIGTERM under load: running associations finish (bounded), new ones are refused,
every file that got a success status is at its final path, the process exits 0, and
every series with stored files is registered exactly once: sent to a real Celery worker
or left in the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from oxidicom.ul import pdu as ul
from oxidicom.ul.constants import PresentationRejectReason, RejectResult, RejectSource
from tests.integration.conftest import require_tool
from tests.integration.raw_peer import RawPeer, associate_rq
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.services import (
    AMQP_URL,
    NATS_URL,
    RABBITMQ,
    TcpProxy,
    assert_progress_contract,
    celery_worker,
    lonk_collector,
    ndicom_by_series,
    outbox_entries,
)
from tests.sample_data import SAG_UID

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"
SENDERS = 3
FILES_PER_SENDER = 96

NO_BROKER = "no broker (embedded default)"
BROKERS_UP = "RabbitMQ and NATS up"
AMQP_LOST = "RabbitMQ lost as the flood starts"


def reported_series(log: str) -> dict[str, int]:
    """calling AE -> files reported by the 'series finished' log lines."""
    counts: dict[str, int] = {}
    for match in re.finditer(r"series finished: (\d+) file\(s\) of \S+ from (\S+)", log):
        counts[match.group(2)] = counts.get(match.group(2), 0) + int(match.group(1))
    return counts


def files_in(receiver: RunningReceiver, series_dir: str) -> int:
    return sum(1 for p in (receiver.files_root / series_dir).iterdir() if p.is_file())


def flood_and_terminate(receiver: RunningReceiver, files: list[Path]) -> list[str]:
    """SENDERS storescu at once; SIGTERM once all are associated. Blocking; their outputs."""
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
            # The senders and the late peer were all still connected: the flood was on.
            # (A line from each worker holding connections, of its own.)
            waiting = r"waiting up to 60 s for (\d+) connection\(s\) to finish"
            receiver.wait_for_log_where(
                lambda log: sum(int(n) for n in re.findall(waiting, log)) >= SENDERS + 1,
                f"wait for {SENDERS + 1} connections",
            )
            assert sum(int(n) for n in re.findall(waiting, receiver.log())) == SENDERS + 1
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
    return outputs


@pytest.mark.parametrize("brokers", [NO_BROKER, BROKERS_UP, AMQP_LOST])
async def test_sigterm_during_a_flood(tmp_path: Path, sample_data: Path, brokers: str) -> None:
    require_tool(STORESCU)
    files = sorted((sample_data / "SAG-anon").glob("*.dcm"))[:FILES_PER_SENDER]
    env = {"OXIDICOM_SHUTDOWN_TIMEOUT": "60s", "OXIDICOM_LOG_LEVEL": "INFO"}
    async with contextlib.AsyncExitStack() as stack:
        worker = lonk = proxy = None
        if brokers != NO_BROKER:
            worker = stack.enter_context(celery_worker())
            lonk = await stack.enter_async_context(lonk_collector())
            amqp = AMQP_URL
            if brokers == AMQP_LOST:
                proxy = TcpProxy(RABBITMQ)
                await proxy.start()
                stack.push_async_callback(proxy.stop)
                amqp = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
            env |= {
                "OXIDICOM_AMQP_ADDRESS": amqp,
                "OXIDICOM_QUEUE_NAME": worker.queue,
                "OXIDICOM_NATS_ADDRESS": NATS_URL,
                "OXIDICOM_ROOT_SUBJECT": lonk.root_subject,
            }
        receiver = await asyncio.to_thread(start_receiver, tmp_path, env)
        try:
            if worker is not None:
                await asyncio.to_thread(receiver.wait_for_log, r"AMQP connected")
            flood = asyncio.create_task(asyncio.to_thread(flood_and_terminate, receiver, files))
            if proxy is not None:
                # The broker "dies" (connections cut, port closed) before any association
                # has ended, so no registration can have reached it.
                await proxy.stop()
            await flood
            # It exits by itself, with status 0, once the associations are done.
            assert await asyncio.to_thread(receiver.process.wait, 120) == 0
        finally:
            receiver.stop()

        log = receiver.log()
        assert re.search(r"\bstopped$", log, re.M)
        # storescu exits 0 only when every file got a success status: all are in place.
        stored = receiver.stored_files()
        assert len(stored) == SENDERS * FILES_PER_SENDER
        assert reported_series(log) == {f"FLOOD{n}": FILES_PER_SENDER for n in range(SENDERS)}
        assert "Traceback" not in log, log

        # Every series with stored files: sent to the worker or left in the outbox, once.
        tasks: list[dict[str, Any]] = []
        if worker is not None:
            await asyncio.to_thread(worker.drain)
            tasks = worker.registrations()
        left = [entry["kwargs"] for entry in outbox_entries(receiver.outbox_dir)]
        expected = {(f"FLOOD{n}", SAG_UID): [FILES_PER_SENDER] for n in range(SENDERS)}
        assert ndicom_by_series(tasks + left) == expected, log
        for registration in tasks + left:  # each names its own folder, holding ndicom files
            assert registration["path"].startswith(f"SERVICES/PACS/{registration['pacs_name']}/")
            assert files_in(receiver, registration["path"]) == registration["ndicom"]
        if brokers == BROKERS_UP:
            assert left == []  # published before exit, each confirmed by the broker
        else:
            assert tasks == []
            assert f"{SENDERS} registration(s) left in the outbox" in log
        if brokers == AMQP_LOST:
            # The loss is reported when it happens (not at the next publish), once, and
            # aiormq's own ERROR per reconnection attempt is kept at DEBUG.
            lines = log.splitlines()
            lost = [i for i, line in enumerate(lines) if "AMQP connection lost" in line]
            written = [i for i, line in enumerate(lines) if "in the outbox: task" in line]
            assert len(lost) == 1 and lost[0] < written[0], log
            assert " ERROR " not in log

        if lonk is not None:  # progress queued at SIGTERM was flushed before exit
            await lonk.settle()
            for n in range(SENDERS):
                messages = lonk.decoded(lonk.subject(f"FLOOD{n}", SAG_UID))
                assert_progress_contract(messages, FILES_PER_SENDER)


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
