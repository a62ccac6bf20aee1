"""A series that the PACS splits over associations reaches CUBE whole, once.

The SAG sample series (192 files) is sent in two halves by dcmtk's storescu, one after the
other, at the same time, and to two receiver processes sharing one FILES_ROOT and outbox
(what ``OXIDICOM_WORKERS=2`` gives when the kernel hands the halves to different workers;
two ports make the split certain). A real Celery 5 worker with CUBE's task receives the
registrations, and a NATS subscriber the LONK messages.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import require_tool
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.services import (
    AMQP_URL,
    NATS,
    CeleryWorker,
    LonkCollector,
    celery_worker,
    lonk_collector,
    outbox_entries,
)
from tests.sample_data import PACS, SAG_SERIES, SAG_UID

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"
WHOLE = 192


@pytest.fixture
def worker() -> Iterator[CeleryWorker]:
    with celery_worker() as running:
        yield running


@pytest.fixture
async def lonk() -> AsyncIterator[LonkCollector]:
    async with lonk_collector() as collector:
        yield collector


@pytest.fixture
def halves(sample_data: Path) -> tuple[list[Path], list[Path]]:
    require_tool(STORESCU)
    files = sorted((sample_data / "SAG-anon").glob("*.dcm"))
    assert len(files) == WHOLE
    return files[: WHOLE // 2], files[WHOLE // 2 :]


def env_for(worker: CeleryWorker, lonk: LonkCollector, **extra: str) -> dict[str, str]:
    return {
        "OXIDICOM_AMQP_ADDRESS": AMQP_URL,
        "OXIDICOM_QUEUE_NAME": worker.queue,
        "OXIDICOM_NATS_ADDRESS": f"nats://{NATS[0]}:{NATS[1]}",
        "OXIDICOM_ROOT_SUBJECT": lonk.root_subject,
        "OXIDICOM_PROGRESS_INTERVAL": "0s",  # every count is sent
        "OXIDICOM_LOG_LEVEL": "INFO",
    } | extra


async def storescu(port: int, files: list[Path]) -> None:
    """One association storing ``files`` (the PACS's AE title of the sample data)."""
    result = await asyncio.to_thread(
        subprocess.run,
        [STORESCU, "-aet", PACS, "-aec", "ChRIS", "127.0.0.1", str(port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def start(tmp: Path, env: dict[str, str]) -> RunningReceiver:
    receiver = await asyncio.to_thread(start_receiver, tmp, env)
    await asyncio.to_thread(receiver.wait_for_log, r"AMQP connected")
    return receiver


async def stop(*receivers: RunningReceiver) -> None:
    for receiver in receivers:
        assert await asyncio.to_thread(receiver.stop) == 0, receiver.log()
        assert outbox_entries(receiver.outbox_dir) == [], receiver.log()


async def registered(worker: CeleryWorker) -> list[int]:
    """The ``ndicom`` of every registration the worker ran (after all that was queued)."""
    await asyncio.to_thread(worker.drain)
    return [t["ndicom"] for t in worker.registrations() if t["SeriesInstanceUID"] == SAG_UID]


def assert_one_whole_series(lonk: LonkCollector, messages: list[str]) -> None:
    """One done, last, right after the final progress with the whole count."""
    assert messages.count("done") == 1, messages
    assert messages[-2:] == [str(WHOLE), "done"], messages[-5:]


async def test_halves_one_after_the_other_are_registered_once_whole(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],
    worker: CeleryWorker,
    lonk: LonkCollector,
) -> None:
    receiver = await start(tmp_path, env_for(worker, lonk))  # the default settle interval
    subject = lonk.subject(PACS, SAG_UID)
    try:
        await storescu(receiver.port, halves[0])
        await storescu(receiver.port, halves[1])
        await lonk.wait_until(lambda: "done" in lonk.decoded(subject))
        await asyncio.to_thread(worker.wait_for_registrations, 1)
    finally:
        await stop(receiver)
    assert await registered(worker) == [WHOLE]
    [task] = worker.registrations()
    assert task["path"] == SAG_SERIES
    await lonk.settle()
    messages = lonk.decoded(subject)
    # Progress counts the whole series and goes on across the two associations.
    assert messages == [str(n) for n in range(1, WHOLE + 1)] + ["done"]
    log = receiver.log()
    assert log.count("association ended") == 2
    assert f"series finished: {WHOLE} file(s) of {SAG_UID} from {PACS} (2 association(s)" in log


async def test_halves_at_the_same_time_are_registered_once_whole(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],
    worker: CeleryWorker,
    lonk: LonkCollector,
) -> None:
    receiver = await start(tmp_path, env_for(worker, lonk, OXIDICOM_SERIES_SETTLE="1s"))
    subject = lonk.subject(PACS, SAG_UID)
    try:
        await asyncio.gather(*(storescu(receiver.port, half) for half in halves))
        await lonk.wait_until(lambda: "done" in lonk.decoded(subject))
    finally:
        await stop(receiver)
    assert await registered(worker) == [WHOLE]
    await lonk.settle()
    messages = lonk.decoded(subject)
    assert_one_whole_series(lonk, messages)
    counts = [int(m) for m in messages[:-1]]
    assert counts == sorted(set(counts))  # one process: strictly increasing


@pytest.mark.parametrize("together", [False, True], ids=["one-after-the-other", "at-once"])
async def test_halves_through_two_receiver_processes_are_registered_once_whole(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],
    worker: CeleryWorker,
    lonk: LonkCollector,
    together: bool,
) -> None:
    env = env_for(worker, lonk, OXIDICOM_SERIES_SETTLE="1s")
    # The same FILES_ROOT and outbox (start_receiver puts both under tmp_path).
    one, two = await asyncio.gather(start(tmp_path, env), start(tmp_path, env))
    subject = lonk.subject(PACS, SAG_UID)
    try:
        if together:
            await asyncio.gather(storescu(one.port, halves[0]), storescu(two.port, halves[1]))
        else:
            await storescu(one.port, halves[0])
            await storescu(two.port, halves[1])
        await lonk.wait_until(lambda: "done" in lonk.decoded(subject))
    finally:
        await stop(one, two)
    assert await registered(worker) == [WHOLE]
    await lonk.settle()
    assert_one_whole_series(lonk, lonk.decoded(subject))
    logs = one.log() + two.log()
    assert logs.count(f"series finished: {WHOLE} file(s) of {SAG_UID}") == 1
    assert logs.count(f"series {SAG_UID} from {PACS}: 96 file(s) stored here, registered by") == 1


async def test_settle_0_registers_each_associations_part_as_before(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],
    worker: CeleryWorker,
    lonk: LonkCollector,
) -> None:
    receiver = await start(tmp_path, env_for(worker, lonk, OXIDICOM_SERIES_SETTLE="0"))
    subject = lonk.subject(PACS, SAG_UID)
    try:
        await storescu(receiver.port, halves[0])
        await lonk.wait_until(lambda: "done" in lonk.decoded(subject))
        await storescu(receiver.port, halves[1])
        await lonk.wait_until(lambda: lonk.decoded(subject).count("done") == 2)
    finally:
        await stop(receiver)
    assert await registered(worker) == [96, 96]
    await lonk.settle()
    half = [str(n) for n in range(1, 97)] + ["done"]
    assert lonk.decoded(subject) == half + half


async def test_a_receiver_killed_while_a_series_settles_registers_it_once_at_restart(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],
    worker: CeleryWorker,
    lonk: LonkCollector,
) -> None:
    env = env_for(worker, lonk, OXIDICOM_SERIES_SETTLE="1h")
    receiver = await start(tmp_path, env)
    try:
        await storescu(receiver.port, [*halves[0], *halves[1]])
        await asyncio.to_thread(receiver.wait_for_log, r"association ended \(released\)")
    finally:
        assert await asyncio.to_thread(receiver.kill9) == -signal.SIGKILL
    assert outbox_entries(receiver.outbox_dir) == []  # it was settling, not registered

    for _ in range(2):  # the second restart finds nothing left to register
        again = await start(tmp_path, env)
        await stop(again)
    assert await registered(worker) == [WHOLE]
    assert list((receiver.outbox_dir / ".journal").glob("*/*.json")) == []


async def test_quarters_at_once_to_two_workers_are_registered_once_whole(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],
    worker: CeleryWorker,
    lonk: LonkCollector,
) -> None:
    """OXIDICOM_WORKERS=2 as deployed: the kernel hands the four associations to either
    worker (the test above makes the split certain); whichever way, one registration."""
    env = env_for(worker, lonk, OXIDICOM_WORKERS="2", OXIDICOM_SERIES_SETTLE="1s")
    receiver = await asyncio.to_thread(start_receiver, tmp_path, env)
    await asyncio.to_thread(receiver.wait_for_log_count, r"AMQP connected", 2)
    files = [*halves[0], *halves[1]]
    subject = lonk.subject(PACS, SAG_UID)
    try:
        await asyncio.gather(*(storescu(receiver.port, files[n::4]) for n in range(4)))
        await lonk.wait_until(lambda: "done" in lonk.decoded(subject))
    finally:
        await stop(receiver)
    assert await registered(worker) == [WHOLE]
    await lonk.settle()
    assert_one_whole_series(lonk, lonk.decoded(subject))
