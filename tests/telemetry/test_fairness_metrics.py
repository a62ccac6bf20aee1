"""The preemption and eviction counters, exported through the SDK's in-memory reader."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from oxidicom import telemetry
from oxidicom.aio.transfer_rate import GRACE
from tests.telemetry.helpers import echo_request, in_process_receiver, metric_points, value


@pytest.fixture
def metrics() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    assert telemetry.setup({}, metric_reader=reader)
    yield reader
    telemetry.shutdown()


async def _associate(port: int, calling: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(echo_request(calling))
    header = await reader.readexactly(6)
    assert header[0] == 0x02, f"expected A-ASSOCIATE-AC, got PDU type {header[0]:#04x}"
    await reader.readexactly(int.from_bytes(header[2:6], "big"))
    return reader, writer


async def test_a_preempted_association_and_evicted_connections_are_counted(
    tmp_path: Path, metrics: InMemoryMetricReader
) -> None:
    before = metric_points(metrics)
    async with in_process_receiver(
        tmp_path, OXIDICOM_LISTENER_THREADS="1", OXIDICOM_MAX_PENDING_CONNECTIONS="2"
    ) as receiver:
        idle = [await asyncio.open_connection("127.0.0.1", receiver.port) for _ in range(5)]
        for reader, _ in idle[:3]:
            assert await reader.read() == b""  # the oldest three are evicted
        evicted = metric_points(metrics)
        for _, idle_writer in idle:
            idle_writer.close()
        held_reader, held_writer = await _associate(receiver.port, "STALLED")
        await asyncio.sleep(GRACE + 0.5)  # stalled past the grace: the scenario
        _, writer = await _associate(receiver.port, "NEWCOMER")
        assert (await held_reader.read())[:1] == b"\x07"  # A-ABORT, then the close
        held_writer.close()
        writer.close()
    after = metric_points(metrics)
    name = "oxidicom.connections.evicted"
    assert value(evicted, name) - value(before, name) == 3
    name = "oxidicom.associations.preempted"
    reason = {"oxidicom.preempt.reason": "below_min_rate"}
    assert value(after, name, **reason) - value(before, name, **reason) == 1
    assert value(after, name, **{"oxidicom.preempt.reason": "host_share"}) == 0
