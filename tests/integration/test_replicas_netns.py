"""Replicas as hosts in network namespaces: one cut off from the series store.

No AMQP or NATS here (they listen on the test machine's loopback, which a namespace
cannot reach): registrations stay in each replica's outbox, and the outboxes are the
record checked.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.netns import Host, Network, network
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.redis_server import RedisServer, redis_server
from tests.integration.services import ndicom_by_series, outbox_entries
from tests.integration.test_replicas import open_association, store_more
from tests.integration.test_split_series import WHOLE, halves  # noqa: F401 - a fixture
from tests.sample_data import PACS, SAG_UID

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"


@pytest.fixture
def net() -> Iterator[Network]:
    with network() as made:
        yield made


@pytest.fixture
def store(tmp_path: Path, net: Network) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis", host=net.store_address) as server:
        server.seasoned()
        yield server


def start_host_replica(tmp: Path, host: Host, store: RedisServer, **extra: str) -> RunningReceiver:
    env = {
        "OXIDICOM_FILES_ROOT": str(tmp / "files"),
        "OXIDICOM_OUTBOX_DIR": str(tmp / host.name / "outbox"),
        "OXIDICOM_LISTENER_ADDRESS": "0.0.0.0",
        "OXIDICOM_SERIES_STORE": store.url,
        "OXIDICOM_SERIES_SETTLE": "1s",
        "OXIDICOM_SERIES_LEASE": os.environ.get("I22_LEASE", "30s"),
    } | extra
    receiver = start_receiver(tmp / host.name, env, command=host.receiver_command())
    receiver.wait_for_log(r"series store \S+ reached")
    return receiver


async def storescu_to(address: str, port: int, files: list[Path]) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [STORESCU, "-aet", PACS, "-aec", "ChRIS", address, str(port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def registrations(*receivers: RunningReceiver) -> list[int]:
    entries = [e["kwargs"] for r in receivers for e in outbox_entries(r.outbox_dir)]
    return ndicom_by_series(entries).get((PACS, SAG_UID), [])


async def test_a_replica_cut_off_from_the_store_keeps_receiving_and_no_partial_registration(
    tmp_path: Path,
    halves: tuple[list[Path], list[Path]],  # noqa: F811
    net: Network,
    store: RedisServer,
) -> None:
    """Replica a (its own host) holds the series in an open association when its link to
    the store goes down; replica b stores the other half and settles meanwhile; a goes on
    storing its second quarter while cut off (every file acknowledged), then its link
    comes back and the association ends: one registration, whole. The cut is shorter than
    the lease (30 s): b waits for a's hold instead of registering three quarters."""
    first, second = halves[0][: WHOLE // 4], halves[0][WHOLE // 4 :]
    host_a, host_b = net.add_host(), net.add_host()
    one, two = await asyncio.gather(
        asyncio.to_thread(start_host_replica, tmp_path, host_a, store, OXIDICOM_LOG_LEVEL="DEBUG"),
        asyncio.to_thread(start_host_replica, tmp_path, host_b, store, OXIDICOM_LOG_LEVEL="DEBUG"),
    )
    try:
        assoc = await asyncio.to_thread(open_association, one.port, first, second, host_a.address)
        host_a.cut()
        await storescu_to(host_b.address, two.port, halves[1])
        await asyncio.to_thread(two.wait_for_log, r"decision waits", 30)
        await asyncio.to_thread(store_more, assoc, second)  # cut off: still acknowledged
        # Long enough for its calls to time out (5 s), not for its hold to lapse (30 s).
        await asyncio.to_thread(one.wait_for_log, r"series store \S+ unreachable", 30)
        host_a.mend()
        await asyncio.to_thread(assoc.release)
        # Whichever replica asks first registers it: the registration in either outbox.
        for _ in range(600):
            if registrations(one, two):
                break
            await asyncio.sleep(0.1)  # outbox files of two processes: polled, bounded
    finally:
        host_a.mend()
        codes = [await asyncio.to_thread(receiver.stop) for receiver in (one, two)]
    assert codes == [0, 0], one.log() + two.log()
    assert registrations(one, two) == [WHOLE]
    assert "reachable again" in one.log()
