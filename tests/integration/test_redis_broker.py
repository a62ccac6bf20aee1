"""Today's CUBE: registrations over Celery on a Redis-protocol broker, for real.

CUBE's compose file runs DragonflyDB as its Celery broker and configures the receiver with
``OXIDICOM_CELERY_BROKER: redis://dragonflydb:6379/0``. Here the same block (hosts mapped
to loopback, a database of the shared Redis of the test's own) drives a real receiver; a
real Celery 5 worker consuming ``main1`` and the test's queue, as CUBE's ``worker-mains``
consumes ``-Q main1,main2``, runs CUBE's task; and what lands in Redis is compared with what
Celery itself puts there.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxidicom.notify.celery import TASK_NAME
from oxidicom.notify.outbox import Outbox, Registration
from oxidicom.notify.redis_publisher import RedisPublisher
from tests.integration.conftest import require_tool
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.redis_servers import PrivateRedis, claimed_database
from tests.integration.services import (
    CeleryWorker,
    assert_progress_contract,
    lonk_collector,
    require_celery,
    unique,
)
from tests.sample_data import EXPECTED_TASKS, SAG_UID, STRUCTURAL_UID

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"
PACS = "OXITESTREDIS"
#: The sample series' folders in the sample data.
SAG_FILES = "SAG-anon"
STRUCTURAL_FILES = "example-dicom-structural/dicoms"

#: CUBE's docker-compose.yml (ChRIS_ultron_backEnd, service ``oxidicom``), but for the
#: broker, NATS and storage addresses, which the test gives.
CUBE_COMPOSE_SETTINGS = {
    "OXIDICOM_SCP_AET": "ChRIS",
    "OXIDICOM_SCP_PROMISCUOUS": "true",
    "OXIDICOM_LISTENER_THREADS": "32",
    "OXIDICOM_PROGRESS_INTERVAL": "100ms",
    "OXIDICOM_DEV_SLEEP": "150ms",
}


@pytest.fixture
def redis_url() -> Iterator[str]:
    with claimed_database() as url:
        yield url


def storescu(port: int, files: list[Path]) -> None:
    subprocess.run(
        [STORESCU, "-aet", PACS, "-aec", "ChRIS", "127.0.0.1", str(port), *map(str, files)],
        check=True,
        capture_output=True,
        timeout=300,
    )


def expected_tasks() -> dict[str, dict[str, Any]]:
    """The sample series' tasks as over AMQP, under this test's AE title."""
    return {
        uid: task | {"pacs_name": PACS, "path": task["path"].replace("OXITESTORTHANC", PACS)}
        for uid, task in EXPECTED_TASKS.items()
    }


async def test_cubes_compose_settings_register_both_series_over_redis(
    tmp_path: Path, sample_data: Path, redis_url: str
) -> None:
    require_tool(STORESCU)
    require_celery()
    queue = unique("main2-")
    worker = await asyncio.to_thread(CeleryWorker, queue, redis_url, ("main1",))
    receiver: RunningReceiver | None = None
    try:
        async with lonk_collector() as lonk:
            env = CUBE_COMPOSE_SETTINGS | {
                "OXIDICOM_CELERY_BROKER": redis_url,
                "OXIDICOM_QUEUE_NAME": queue,
                "OXIDICOM_NATS_ADDRESS": "127.0.0.1:4222",
                "OXIDICOM_ROOT_SUBJECT": lonk.root_subject,
            }
            receiver = await asyncio.to_thread(start_receiver, tmp_path / "receiver", env)
            # The start line names the broker kind; no AMQP is spoken to a Redis URL.
            assert f"Celery broker Redis {redis_url} queue {queue}" in receiver.log()
            sag = sorted((sample_data / SAG_FILES).glob("*.dcm"))
            structural = sorted((sample_data / STRUCTURAL_FILES).glob("*.dcm"))
            await asyncio.gather(
                asyncio.to_thread(storescu, receiver.port, sag),
                asyncio.to_thread(storescu, receiver.port, structural),
            )
            tasks = await asyncio.to_thread(worker.wait_for_registrations, 2, 120)
            subjects = {uid: lonk.subject(PACS, uid) for uid in EXPECTED_TASKS}
            await lonk.wait_until(
                lambda: all(lonk.decoded(s)[-1:] == ["done"] for s in subjects.values())
            )
            assert await asyncio.to_thread(receiver.stop) == 0, receiver.log()
            await asyncio.to_thread(worker.drain)
            await lonk.settle()
            decoded = {uid: lonk.decoded(subject) for uid, subject in subjects.items()}
    finally:
        if receiver is not None:
            receiver.stop()
        worker.stop()
    # Once per series, with the same arguments as over AMQP (CONTRACT section 3).
    tasks = worker.registrations()
    assert {t["SeriesInstanceUID"]: t for t in tasks} == expected_tasks()
    assert len(tasks) == 2
    assert {t["ndicom"] for t in tasks} == {192, 384}
    for uid, messages in decoded.items():
        assert_progress_contract(messages, EXPECTED_TASKS[uid]["ndicom"])
    assert not list((tmp_path / "receiver" / "outbox").glob("*.json"))
    assert "AMQP" not in receiver.log()
    assert {SAG_UID, STRUCTURAL_UID} == set(decoded)


async def test_what_lands_in_redis_is_what_celery_itself_puts_there(
    tmp_path: Path, redis_url: str
) -> None:
    """Celery's ``send_task`` and our publisher, same task and arguments, side by side in
    one database: the same document, but for what is new per message."""
    require_celery()
    import redis
    from celery import Celery

    kwargs = dict(expected_tasks()[SAG_UID]) | {"PatientName": "Ünïcödé^Näme"}
    app = Celery("cube", broker=redis_url, set_as_current=False)
    app.send_task(TASK_NAME, kwargs=kwargs, queue="celerys")
    outbox = Outbox(tmp_path / "outbox")
    outbox.prepare()
    publisher = RedisPublisher(redis_url, outbox, origin="oxidicom1@host")
    publisher.submit(outbox.add(Registration.new(TASK_NAME, "ours", kwargs)))
    publisher.start()
    client = redis.Redis.from_url(redis_url)
    try:
        ours = await asyncio.to_thread(client.brpop, ["ours"], 30)
        theirs = client.rpop("celerys")
    finally:
        client.close()
        await publisher.stop(5)
    assert ours is not None and theirs is not None
    ours_doc, theirs_doc = json.loads(ours[1]), json.loads(theirs)

    def shape(document: object) -> object:
        if isinstance(document, dict):
            return {key: shape(value) for key, value in document.items()}
        return type(document).__name__

    # Every field, nested, with the same type (the body is compared decoded below).
    assert shape(ours_doc) == shape(theirs_doc) | {"headers": shape(ours_doc["headers"])}
    assert set(ours_doc["headers"]) == set(theirs_doc["headers"])
    per_message = {"id", "root_id", "origin", "ignore_result"}
    assert {k: v for k, v in ours_doc["headers"].items() if k not in per_message} == {
        k: v for k, v in theirs_doc["headers"].items() if k not in per_message
    }
    assert ours_doc["headers"]["id"] == ours_doc["headers"]["root_id"]
    per_publish = {"correlation_id", "reply_to", "delivery_tag", "delivery_info"}
    assert {k: v for k, v in ours_doc["properties"].items() if k not in per_publish} == {
        k: v for k, v in theirs_doc["properties"].items() if k not in per_publish
    }
    # The worker gives an unacknowledged message back to the list it came from.
    assert ours_doc["properties"]["delivery_info"] == {"exchange": "", "routing_key": "ours"}
    assert theirs_doc["properties"]["delivery_info"]["routing_key"] == "celerys"
    for key in ("content-type", "content-encoding"):
        assert ours_doc[key] == theirs_doc[key]
    assert json.loads(base64.b64decode(ours_doc["body"])) == json.loads(
        base64.b64decode(theirs_doc["body"])
    )


async def test_a_worker_registers_what_waited_through_a_redis_restart(
    tmp_path: Path, sample_data: Path
) -> None:
    """A broker without persistence (CUBE's compose file keeps Dragonfly's data in a
    volume, Redis here keeps nothing) is killed while a series arrives and comes back
    empty: the receiver publishes what waited in its outbox, and the worker, reconnected,
    registers both series once each."""
    require_tool(STORESCU)
    require_celery()
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    queue = unique("main2-")
    worker = await asyncio.to_thread(CeleryWorker, queue, server.url(0))
    receiver: RunningReceiver | None = None
    try:
        env = {
            "OXIDICOM_CELERY_BROKER": server.url(0),
            "OXIDICOM_QUEUE_NAME": queue,
            "OXIDICOM_SERIES_SETTLE": "200ms",
            # The broker's outage, not the series store's: with the store on this server
            # too (the default), the second series would wait for it in the journal,
            # not in the outbox (docs/operations.md, Scaling out).
            "OXIDICOM_SERIES_STORE": "none",
        }
        receiver = await asyncio.to_thread(start_receiver, tmp_path / "receiver", env)
        await asyncio.to_thread(receiver.wait_for_log, r"Redis connected")
        await asyncio.to_thread(
            storescu, receiver.port, sorted((sample_data / SAG_FILES).glob("*.dcm"))
        )
        await asyncio.to_thread(worker.wait_for_registrations, 1, 60)
        server.stop()  # SIGKILL
        await asyncio.to_thread(
            storescu, receiver.port, sorted((sample_data / STRUCTURAL_FILES).glob("*.dcm"))
        )
        await asyncio.to_thread(receiver.wait_for_log, r"Redis connection lost")
        assert len(list(receiver.outbox_dir.glob("*.json"))) == 1
        server.start()
        tasks = await asyncio.to_thread(worker.wait_for_registrations, 2, 120)
        await asyncio.to_thread(receiver.wait_for_log, r"registration sent: .* 384 file")
        assert await asyncio.to_thread(receiver.stop) == 0, receiver.log()
    finally:
        if receiver is not None:
            receiver.stop()
        worker.stop()
        server.stop()
    assert sorted((t["SeriesInstanceUID"], t["ndicom"]) for t in tasks) == sorted(
        [(SAG_UID, 192), (STRUCTURAL_UID, 384)]
    )
    assert not list(receiver.outbox_dir.glob("*.json"))
    # The outage is a WARNING or two in each process (its publisher's connection), not
    # one per retry; the recovery one INFO line in each that reconnected.
    lines = receiver.log().splitlines()
    processes = receiver.processes()
    warnings = [line for line in lines if "WARNING" in line and "Redis" in line]
    assert 1 <= len(warnings) <= 2 * processes, warnings
    connected = sum(1 for line in lines if "Redis connected to" in line)
    assert processes + 1 <= connected <= 2 * processes
