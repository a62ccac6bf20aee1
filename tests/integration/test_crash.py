"""SIGKILL: no partial file at a final path; the next start cleans up, publishes what
the outbox holds and registers, from the dead receiver's journal, what its unfinished
associations had stored.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from oxidicom.dimse.commands import CommandField, encode_request
from oxidicom.storage.writer import DEFAULT_FLUSH_BYTES, TMP_DIR_NAME
from tests.integration.raw_peer import EXPLICIT_LE, MR_STORAGE, RawPeer, associate_rq, message
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.services import (
    AMQP_URL,
    NATS_URL,
    RABBITMQ,
    TcpProxy,
    celery_worker,
    lonk_collector,
    outbox_entries,
)
from tests.integration.test_disk_faults import instance

pytestmark = pytest.mark.integration


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for a condition on the filesystem (no notification exists for it here)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.01)


def partial_files(tmp_dir: Path) -> list[Path]:
    """Temporary instance files, in whichever receiver's folder they are."""
    return sorted(tmp_dir.rglob("*.part"))


def test_sigkill_mid_instance_leaves_no_partial_file_and_restart_cleans_up(
    tmp_path: Path,
) -> None:
    receiver = start_receiver(tmp_path)
    tmp_dir = receiver.files_root / TMP_DIR_NAME
    uid, dataset = instance(4 * DEFAULT_FLUSH_BYTES, 1)
    command = encode_request(
        CommandField.C_STORE_RQ,
        1,
        affected_sop_class_uid=MR_STORAGE,
        affected_sop_instance_uid=uid,
        has_dataset=True,
    )
    stream = message(1, command, dataset, 16000)
    half = len(stream) // 2  # well past the flush threshold: the temp file exists
    with RawPeer.connect(receiver.port) as peer:
        peer.associate(associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
        peer.send(stream[:half])
        # The kill lands inside the instance: its temp file exists and holds part of it.
        wait_until(lambda: any(f.stat().st_size > 0 for f in partial_files(tmp_dir)))
        assert receiver.kill9() == -signal.SIGKILL
        assert peer.read_until_closed() == []
    assert receiver.stored_files() == []
    [stale] = partial_files(tmp_dir)
    assert 0 < stale.stat().st_size < len(dataset)

    again = start_receiver(tmp_path)
    try:
        again.wait_for_log(r"removed 1 temporary file\(s\) left by")
        assert partial_files(tmp_dir) == []
        # Only the new receiver's own (locked, empty) folders are left: one per process.
        processes = again.processes()
        assert len([p for p in tmp_dir.iterdir() if p.is_dir()]) == processes
        assert [p.name for p in tmp_dir.rglob("*") if p.is_file()] == [".lock"] * processes
        with RawPeer.connect(again.port) as peer:
            peer.associate(associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
            assert peer.c_store(dataset, uid) == 0x0000
            peer.release()
        [stored] = again.stored_files()
        assert stored.stat().st_size > len(dataset)
    finally:
        assert again.stop() == 0


def store_series(port: int, calling: str, series_uid: str, count: int) -> list[int]:
    """One released association from ``calling`` storing ``count`` small instances."""
    with RawPeer.connect(port) as peer:
        peer.associate(associate_rq(calling, contexts=((MR_STORAGE, EXPLICIT_LE),)))
        statuses = []
        for number in range(1, count + 1):
            uid, dataset = instance(20_000, number, series_uid)
            statuses.append(peer.c_store(dataset, uid, message_id=number))
        peer.release()
    return statuses


def sigkill(receiver: RunningReceiver) -> None:
    assert receiver.kill9() == -signal.SIGKILL


async def test_sigkill_with_a_registration_in_the_outbox_the_restart_publishes_it_once(
    tmp_path: Path,
) -> None:
    uid = "1.2.826.0.1.3680043.8.498.141"
    with celery_worker() as worker:
        proxy = TcpProxy(RABBITMQ)
        await proxy.start()
        await proxy.stop()  # keep the port number; the broker is unreachable there for now
        env = {
            "OXIDICOM_AMQP_ADDRESS": f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
            "OXIDICOM_QUEUE_NAME": worker.queue,
        }
        first = await asyncio.to_thread(start_receiver, tmp_path, env)
        try:
            await asyncio.to_thread(first.wait_for_log, r"AMQP broker at .* unreachable")
            statuses = await asyncio.to_thread(store_series, first.port, "CRASHPACS", uid, 2)
            assert statuses == [0, 0]
            await asyncio.to_thread(
                first.wait_for_log, rf"registration of series {uid} \(2 file\(s\)\) in the outbox"
            )
        finally:
            sigkill(first)
        # The entry is on disk, whole, as the killed process wrote it.
        [entry] = outbox_entries(first.outbox_dir)
        assert entry["kwargs"]["SeriesInstanceUID"] == uid
        assert entry["kwargs"]["ndicom"] == 2
        assert worker.registrations() == []

        await proxy.start()  # the broker is back, on the same port
        try:
            second = await asyncio.to_thread(start_receiver, tmp_path, env)
            try:
                await asyncio.to_thread(
                    second.wait_for_log, r"1 registration\(s\) from an earlier run wait"
                )
                await asyncio.to_thread(worker.wait_for_registrations, 1)
            finally:
                # The receiver first: the broker's confirm may still be in the proxy.
                assert await asyncio.to_thread(second.stop) == 0, second.log()
        finally:
            await proxy.stop()
        assert outbox_entries(second.outbox_dir) == [], second.log()
        await asyncio.to_thread(worker.drain)
        assert worker.registrations() == [entry["kwargs"]]
        assert "Traceback" not in second.log()


async def test_sigkill_mid_association_the_restart_registers_what_it_stored(
    tmp_path: Path,
) -> None:
    """A series is registered when its association ends, and a killed receiver never sees
    that end: its journal (oxidicom/notify/journal.py) does. The next start registers the
    two acknowledged files exactly once; LONK stops at the last progress sent, without
    done. The instance cut by the kill leaves neither a file, nor progress, nor an error."""
    uid = "1.2.826.0.1.3680043.8.498.151"
    with celery_worker() as worker:
        async with lonk_collector() as lonk:
            env = {
                "OXIDICOM_AMQP_ADDRESS": AMQP_URL,
                "OXIDICOM_QUEUE_NAME": worker.queue,
                "OXIDICOM_NATS_ADDRESS": NATS_URL,
                "OXIDICOM_ROOT_SUBJECT": lonk.root_subject,
                "OXIDICOM_PROGRESS_INTERVAL": "0s",  # every count is sent
            }
            subject = lonk.subject("CRASHPACS", uid)
            receiver = await asyncio.to_thread(start_receiver, tmp_path, env)
            tmp_dir = receiver.files_root / TMP_DIR_NAME
            with RawPeer.connect(receiver.port) as peer:
                try:
                    await asyncio.to_thread(receiver.wait_for_log, r"AMQP connected")
                    peer.associate(associate_rq("CRASHPACS", ((MR_STORAGE, EXPLICIT_LE),)))
                    for number in (1, 2):
                        sop_uid, dataset = instance(20_000, number, uid)
                        status = await asyncio.to_thread(
                            peer.c_store, dataset, sop_uid, message_id=number
                        )
                        assert status == 0
                    await lonk.wait_until(lambda: lonk.decoded(subject) == ["1", "2"])
                    # The third instance: half of it, past the flush threshold, then the kill.
                    sop_uid, dataset = instance(4 * DEFAULT_FLUSH_BYTES, 3, uid)
                    command = encode_request(
                        CommandField.C_STORE_RQ,
                        3,
                        affected_sop_class_uid=MR_STORAGE,
                        affected_sop_instance_uid=sop_uid,
                        has_dataset=True,
                    )
                    stream = message(1, command, dataset, 16000)
                    peer.send(stream[: len(stream) // 2])
                    await asyncio.to_thread(
                        wait_until,
                        lambda: any(f.stat().st_size > 0 for f in partial_files(tmp_dir)),
                    )
                finally:
                    sigkill(receiver)
                assert await asyncio.to_thread(peer.read_until_closed) == []
            assert len(receiver.stored_files()) == 2
            assert len(partial_files(tmp_dir)) == 1
            assert outbox_entries(receiver.outbox_dir) == []  # the association never ended
            [journaled] = list((receiver.outbox_dir / ".journal").glob("*/*.json"))

            again = await asyncio.to_thread(start_receiver, tmp_path, env)
            try:
                again.wait_for_log(
                    rf"series {uid} of association \S+, left in the journal by an earlier run"
                    r" .*: registration of 2 file\(s\) in the outbox"
                )
                await asyncio.to_thread(
                    again.wait_for_log, r"AMQP connected .*; 1 registration\(s\) to publish"
                )
                again.wait_for_log(r"removed 1 temporary file\(s\) left by")
                await asyncio.to_thread(worker.wait_for_registrations, 1)
            finally:
                assert await asyncio.to_thread(again.stop) == 0, again.log()
            assert not journaled.exists()
            assert len(again.stored_files()) == 2
            assert outbox_entries(again.outbox_dir) == []  # published and confirmed
            await asyncio.to_thread(worker.drain)
            [kwargs] = worker.registrations()
            assert kwargs["SeriesInstanceUID"] == uid
            assert kwargs["ndicom"] == 2
            assert kwargs["pacs_name"] == "CRASHPACS"
            assert (again.files_root / kwargs["path"]).is_dir()
            await lonk.settle()
            assert lonk.decoded(subject) == ["1", "2"]
