"""Telling CUBE: Celery registrations over AMQP and LONK progress over NATS, for real.

A real receiver process, real RabbitMQ and NATS, a real Celery 5 worker running a task with
CUBE's name and signature, and Orthanc (Debian's) as the PACS. Each test has its own queue,
NATS root subject, ports and directories, so concurrent runs never meet.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage
from pynetdicom import AE

from tests.dicom_factory import mr_instance, with_transfer_syntax
from tests.integration.conftest import require_tool
from tests.integration.orthanc import Orthanc
from tests.integration.pynetdicom_scu import scu_only
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.services import (
    NATS,
    RABBITMQ,
    CeleryWorker,
    LonkCollector,
    TcpProxy,
    assert_progress_contract,
    require_celery,
    require_service,
    unique,
)
from tests.sample_data import (
    EXPECTED_TASKS,
    PACS,
    SAG_SERIES,
    SAG_UID,
    STRUCTURAL_SERIES,
    STRUCTURAL_UID,
)

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def worker() -> Iterator[CeleryWorker]:
    """A Celery 5 worker with CUBE's task, consuming a queue of this test's own."""
    require_service("RabbitMQ", RABBITMQ)
    require_celery()
    running = CeleryWorker(unique("oxidicom-test-"))
    yield running
    running.stop()


@pytest.fixture
async def lonk() -> AsyncIterator[LonkCollector]:
    """A NATS subscriber to every subject under a root subject of this test's own."""
    require_service("NATS", NATS)
    collector = LonkCollector(unique("oxitest"))
    await collector.start()
    yield collector
    await collector.close()


def receiver_env(
    *, queue: str | None = None, amqp: str | None = None, lonk: LonkCollector | None = None
) -> dict[str, str]:
    env = {"OXIDICOM_LOG_LEVEL": "INFO"}
    if amqp is not None and queue is not None:
        env |= {"OXIDICOM_AMQP_ADDRESS": amqp, "OXIDICOM_QUEUE_NAME": queue}
    if lonk is not None:
        env |= {
            "OXIDICOM_NATS_ADDRESS": "nats://127.0.0.1:4222",
            "OXIDICOM_ROOT_SUBJECT": lonk.root_subject,
        }
    return env


def amqp_url(port: int = RABBITMQ[1]) -> str:
    return f"amqp://guest:guest@127.0.0.1:{port}/"


async def start(tmp: Path, env: dict[str, str]) -> RunningReceiver:
    return await asyncio.to_thread(start_receiver, tmp, env)


async def wait_log(receiver: RunningReceiver, pattern: str, timeout: float = 60) -> None:
    await asyncio.to_thread(receiver.wait_for_log, pattern, timeout)


async def stop(receiver: RunningReceiver) -> int:
    return await asyncio.to_thread(receiver.stop)


def expected_path(source: Path, series_dir: str) -> str:
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    return f"{series_dir}/{int(ds.InstanceNumber):04d}-{ds.SOPInstanceUID}.dcm"


def outbox_entries(receiver: RunningReceiver) -> list[dict[str, Any]]:
    if not receiver.outbox_dir.exists():
        return []
    names = sorted(p for p in receiver.outbox_dir.iterdir() if p.name.endswith(".json"))
    return [json.loads(p.read_text()) for p in names]


def send_synthetic(port: int, instances: list[pydicom.Dataset], ae_title: str) -> list[int]:
    """One association from ``ae_title`` storing ``instances``; their statuses."""
    ae = AE(ae_title=ae_title)
    ae.add_requested_context(MRImageStorage, [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", port, ae_title="ChRIS")
    assert assoc.is_established
    scu_only(assoc)
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in instances]
    finally:
        assoc.release()


def synthetic_series(uid: str, count: int, **overrides: object) -> list[pydicom.Dataset]:
    return [
        with_transfer_syntax(
            mr_instance(instance_number=n, series_uid=uid, **overrides), ExplicitVRLittleEndian
        )
        for n in range(1, count + 1)
    ]


async def assert_exactly_once(
    worker: CeleryWorker, receiver: RunningReceiver, expected: dict[str, int]
) -> list[dict[str, Any]]:
    """After the receiver exited with an empty outbox (every registration confirmed by the
    broker), the worker ran exactly one task per series, with these ``ndicom``."""
    assert outbox_entries(receiver) == [], receiver.log()
    await asyncio.to_thread(worker.drain)
    tasks = worker.registrations()
    assert sorted(t["SeriesInstanceUID"] for t in tasks) == sorted(expected)
    assert {t["SeriesInstanceUID"]: t["ndicom"] for t in tasks} == expected
    return tasks


# -- Orthanc pushes both sample series at once ----------------------------------------------


async def test_orthanc_pushes_both_series_registered_once_with_lonk_progress(
    tmp_path: Path, sample_data: Path, worker: CeleryWorker, lonk: LonkCollector
) -> None:
    require_tool("/usr/sbin/Orthanc")
    receiver = await start(
        tmp_path / "receiver",
        receiver_env(queue=worker.queue, amqp=amqp_url(), lonk=lonk)
        | {"OXIDICOM_PROGRESS_INTERVAL": "50ms"},
    )
    orthanc: Orthanc | None = None
    try:
        orthanc = await asyncio.to_thread(Orthanc, tmp_path / "orthanc", PACS, receiver.port)
        sag = sorted((sample_data / "SAG-anon").glob("*.dcm"))
        structural = sorted((sample_data / "example-dicom-structural" / "dicoms").glob("*.dcm"))
        await asyncio.to_thread(orthanc.upload, sag + structural)
        # Both store jobs at once: two concurrent associations.
        await asyncio.gather(
            asyncio.to_thread(orthanc.store_async, SAG_UID),
            asyncio.to_thread(orthanc.store_async, STRUCTURAL_UID),
        )
        subjects = {uid: lonk.subject(PACS, uid) for uid in EXPECTED_TASKS}
        await lonk.wait_until(
            lambda: all(lonk.decoded(s)[-1:] == ["done"] for s in subjects.values())
        )
        await asyncio.to_thread(worker.wait_for_registrations, 2)
    finally:
        if orthanc is not None:
            orthanc.stop()
        assert await stop(receiver) == 0, receiver.log()

    tasks = await assert_exactly_once(worker, receiver, {SAG_UID: 192, STRUCTURAL_UID: 384})
    assert {t["SeriesInstanceUID"]: t for t in tasks} == EXPECTED_TASKS
    # The worker declared the queue first; ours was the same declaration (not refused).
    assert "exists with other settings" not in receiver.log()
    # At the same time: the second association began before the first one ended.
    lines = receiver.log().splitlines()
    accepted = [i for i, line in enumerate(lines) if f"from {PACS}@" in line and "accepted" in line]
    ended = [i for i, line in enumerate(lines) if "association ended" in line]
    assert len(accepted) == 2 and len(ended) == 2
    assert accepted[1] < ended[0]

    await lonk.settle()
    for uid, subject in subjects.items():
        assert_progress_contract(lonk.decoded(subject), EXPECTED_TASKS[uid]["ndicom"])
    assert len(lonk.messages) == sum(len(lonk.decoded(s)) for s in subjects.values())

    expected_files = sorted(
        [f"{SAG_SERIES}/{p.name}" for p in sag]
        + [expected_path(p, STRUCTURAL_SERIES) for p in structural]
    )
    stored = sorted(str(p.relative_to(receiver.files_root)) for p in receiver.stored_files())
    assert stored == expected_files
    print(  # for the record (pytest -s): how many LONK messages the 50 ms interval let through
        "LONK messages per series:",
        {uid: len(lonk.decoded(s)) for uid, s in subjects.items()},
        "tasks:",
        len(tasks),
        "associations:",
        [line.split("): ", 1)[-1] for line in lines if "association ended" in line],
    )


# -- progress only, embedded default for registrations ---------------------------------------


async def test_long_interval_sends_first_final_done_and_registration_stays_in_outbox(
    tmp_path: Path, sample_data: Path, lonk: LonkCollector
) -> None:
    """No broker configured (the embedded default): the registration waits in the outbox,
    readable; with a 1 h interval the series gets exactly progress 1, progress 192, done."""
    require_tool(STORESCU)
    env = receiver_env(lonk=lonk)
    env |= {"OXIDICOM_PROGRESS_INTERVAL": "1h", "OXIDICOM_DEV_SLEEP": "1ms"}
    receiver = await start(tmp_path, env)
    try:
        result = await asyncio.to_thread(
            subprocess.run,
            [
                *(STORESCU, "-aet", PACS, "-aec", "ChRIS", "+sd", "+r", "+sp", "*.dcm"),
                *("127.0.0.1", str(receiver.port), str(sample_data / "SAG-anon")),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        assert result.returncode == 0, result.stderr
    finally:
        assert await stop(receiver) == 0, receiver.log()
    await lonk.settle()
    assert lonk.decoded(lonk.subject(PACS, SAG_UID)) == ["1", "192", "done"]
    assert "OXIDICOM_DEV_SLEEP=0.001s" in receiver.log()  # the warning at start
    assert "1 registration(s) left in the outbox" in receiver.log()
    [entry] = outbox_entries(receiver)
    assert entry["task"] == "pacsfiles.tasks.register_pacs_series"
    assert entry["queue"] == "main2"
    assert entry["attempts"] == 0
    assert entry["kwargs"] == EXPECTED_TASKS[SAG_UID]


# -- an instance that cannot be stored ---------------------------------------------------


async def test_missing_study_date_sends_one_error_and_nothing_else(
    tmp_path: Path, worker: CeleryWorker, lonk: LonkCollector
) -> None:
    bad_uid, good_uid = "1.2.826.0.1.3680043.8.498.71", "1.2.826.0.1.3680043.8.498.72"
    receiver = await start(tmp_path, receiver_env(queue=worker.queue, amqp=amqp_url(), lonk=lonk))
    try:
        bad = synthetic_series(bad_uid, 1, StudyDate=None)
        good = synthetic_series(good_uid, 1)
        statuses = await asyncio.to_thread(
            send_synthetic, receiver.port, bad + good, "OXITESTPYNET"
        )
        assert statuses[0] & 0xF000 == 0xC000 and statuses[1] == 0
        await asyncio.to_thread(worker.wait_for_registrations, 1)
    finally:
        assert await stop(receiver) == 0, receiver.log()
    await assert_exactly_once(worker, receiver, {good_uid: 1})
    await lonk.settle()
    [error] = lonk.decoded(lonk.subject("OXITESTPYNET", bad_uid))
    assert error.startswith("error:") and "StudyDate" in error
    assert lonk.decoded(lonk.subject("OXITESTPYNET", good_uid)) == ["1", "done"]
    assert len(lonk.messages) == 3


# -- broker outages --------------------------------------------------------------------------


async def test_broker_lost_mid_run_task_arrives_once_when_back(
    tmp_path: Path, worker: CeleryWorker
) -> None:
    proxy = TcpProxy(RABBITMQ)
    await proxy.start()
    uid = "1.2.826.0.1.3680043.8.498.81"
    receiver = await start(tmp_path, receiver_env(queue=worker.queue, amqp=amqp_url(proxy.port)))
    try:
        await wait_log(receiver, r"AMQP connected")
        await proxy.stop()  # the broker "dies": connections cut, port closed
        statuses = await asyncio.to_thread(
            send_synthetic, receiver.port, synthetic_series(uid, 3), PACS
        )
        assert statuses == [0, 0, 0]  # reception goes on
        await wait_log(receiver, rf"registration of series {uid} \(3 file\(s\)\) in the outbox")
        await wait_log(receiver, r"AMQP broker at .* unreachable")
        [entry] = outbox_entries(receiver)
        assert entry["kwargs"]["SeriesInstanceUID"] == uid and entry["kwargs"]["ndicom"] == 3
        assert worker.registrations() == []
        await proxy.start()  # back, same port
        await asyncio.to_thread(worker.wait_for_registrations, 1)
    finally:
        # The receiver first: the broker's confirm may still be on its way through the proxy.
        assert await stop(receiver) == 0, receiver.log()
        await proxy.stop()
    await assert_exactly_once(worker, receiver, {uid: 3})


async def test_receiver_restarted_while_broker_down_task_arrives_once(
    tmp_path: Path, worker: CeleryWorker
) -> None:
    proxy = TcpProxy(RABBITMQ)
    await proxy.start()
    await proxy.stop()  # keep the port number; nothing listens there now
    uid = "1.2.826.0.1.3680043.8.498.91"
    env = receiver_env(queue=worker.queue, amqp=amqp_url(proxy.port))
    first = await start(tmp_path, env)
    try:
        await wait_log(first, r"AMQP broker at .* unreachable")
        statuses = await asyncio.to_thread(
            send_synthetic, first.port, synthetic_series(uid, 2), PACS
        )
        assert statuses == [0, 0]
    finally:
        assert await stop(first) == 0, first.log()
    assert "1 registration(s) left in the outbox" in first.log()
    [entry] = outbox_entries(first)
    assert entry["kwargs"]["SeriesInstanceUID"] == uid

    second = await start(tmp_path, env)  # same outbox
    try:
        await wait_log(second, r"1 registration\(s\) from an earlier run wait in the outbox")
        await proxy.start()
        await asyncio.to_thread(worker.wait_for_registrations, 1)
    finally:
        assert await stop(second) == 0, second.log()
        await proxy.stop()
    [task] = await assert_exactly_once(worker, second, {uid: 2})
    assert task == entry["kwargs"]


# -- shutdown, NATS outage, a queue declared differently -------------------------------------


async def test_sigterm_right_after_a_series_publishes_and_flushes_before_exit(
    tmp_path: Path, worker: CeleryWorker, lonk: LonkCollector
) -> None:
    uid = "1.2.826.0.1.3680043.8.498.101"
    receiver = await start(tmp_path, receiver_env(queue=worker.queue, amqp=amqp_url(), lonk=lonk))
    try:
        statuses = await asyncio.to_thread(
            send_synthetic, receiver.port, synthetic_series(uid, 2), PACS
        )
        assert statuses == [0, 0]
    finally:
        assert await stop(receiver) == 0, receiver.log()  # at once: nothing waited for
    await assert_exactly_once(worker, receiver, {uid: 2})
    await lonk.settle()
    assert lonk.decoded(lonk.subject(PACS, uid)) == ["1", "2", "done"]


async def test_nats_unreachable_never_stops_reception_or_registration(
    tmp_path: Path, worker: CeleryWorker
) -> None:
    closed = TcpProxy(NATS)
    await closed.start()
    await closed.stop()  # a port where nothing listens
    uid = "1.2.826.0.1.3680043.8.498.111"
    env = receiver_env(queue=worker.queue, amqp=amqp_url()) | {
        "OXIDICOM_NATS_ADDRESS": f"nats://127.0.0.1:{closed.port}",
        "OXIDICOM_PROGRESS_INTERVAL": "0s",
    }
    receiver = await start(tmp_path, env)
    try:
        await wait_log(receiver, r"NATS at .* unreachable")
        statuses = await asyncio.to_thread(
            send_synthetic, receiver.port, synthetic_series(uid, 4), PACS
        )
        assert statuses == [0, 0, 0, 0]
        await asyncio.to_thread(worker.wait_for_registrations, 1)
    finally:
        assert await stop(receiver) == 0, receiver.log()
    await assert_exactly_once(worker, receiver, {uid: 4})
    assert len(receiver.stored_files()) == 4
    # progress 1..4 and done, waiting for NATS, are given up at exit, and said so
    assert "LONK: 0 message(s) sent, 0 dropped, 5 not sent at shutdown" in receiver.log()


async def test_queue_declared_otherwise_by_cube_is_used_as_it_is(tmp_path: Path) -> None:
    """A quorum queue (Celery 5.5's task_default_queue_type="quorum"): our declaration
    is refused, so the task goes to the queue as it is."""
    require_service("RabbitMQ", RABBITMQ)
    import aio_pika

    queue_name = unique("oxidicom-test-quorum-")
    connection = await aio_pika.connect(amqp_url())
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        uid = "1.2.826.0.1.3680043.8.498.121"
        receiver = await start(tmp_path, receiver_env(queue=queue_name, amqp=amqp_url()))
        try:
            statuses = await asyncio.to_thread(
                send_synthetic, receiver.port, synthetic_series(uid, 1), PACS
            )
            assert statuses == [0]
            await wait_log(receiver, r"registration sent")
        finally:
            assert await stop(receiver) == 0, receiver.log()
        assert "exists with other settings" in receiver.log()
        message = await queue.get(no_ack=True, fail=True)
        assert message.headers["task"] == "pacsfiles.tasks.register_pacs_series"
        assert json.loads(message.body)[1]["SeriesInstanceUID"] == uid
        assert await queue.get(no_ack=True, fail=False) is None
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


async def test_celery_worker_accepts_the_queue_we_declared_first(tmp_path: Path) -> None:
    """The other order: we declare the queue, then a Celery worker declares it (a
    different declaration would make the broker refuse the worker's)."""
    require_service("RabbitMQ", RABBITMQ)
    require_celery()
    queue = unique("oxidicom-test-")
    uid = "1.2.826.0.1.3680043.8.498.131"
    receiver = await start(tmp_path, receiver_env(queue=queue, amqp=amqp_url()))
    try:
        statuses = await asyncio.to_thread(
            send_synthetic, receiver.port, synthetic_series(uid, 1), PACS
        )
        assert statuses == [0]
        await wait_log(receiver, r"registration sent")
    finally:
        assert await stop(receiver) == 0, receiver.log()
    worker = await asyncio.to_thread(CeleryWorker, queue)
    try:
        await assert_exactly_once(worker, receiver, {uid: 1})
        assert "PRECONDITION_FAILED" not in worker.output()
    finally:
        worker.stop()
