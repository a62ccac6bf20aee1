"""The preemption and eviction counters, exported through the SDK's in-memory reader."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from oxidicom import telemetry
from oxidicom.dimse.commands import CommandField, encode_request
from oxidicom.scp.transfer_rate import GRACE
from tests.integration.raw_peer import VERIFICATION, pdata
from tests.telemetry.helpers import echo_request, in_process_receiver, metric_points, value

_C_ECHO = pdata(
    1, True, True, encode_request(CommandField.C_ECHO_RQ, 1, affected_sop_class_uid=VERIFICATION)
)


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


async def test_a_preemption_for_another_host_is_counted_by_its_reason(
    tmp_path: Path, metrics: InMemoryMetricReader
) -> None:
    before = metric_points(metrics)
    # 1 B/s: the holders, which send a C-ECHO once accepted, are above the minimum rate;
    # only per-host fairness can take a slot from them.
    async with in_process_receiver(
        tmp_path, OXIDICOM_LISTENER_THREADS="2", OXIDICOM_MIN_TRANSFER_RATE="1B/s"
    ) as receiver:
        holders = []
        for calling in ("HOLDER1", "HOLDER2"):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", receiver.port, local_addr=("127.0.0.2", 0)
            )
            writer.write(echo_request(calling))
            header = await reader.readexactly(6)
            assert header[0] == 0x02  # A-ASSOCIATE-AC
            await reader.readexactly(int.from_bytes(header[2:6], "big"))
            writer.write(_C_ECHO)
            header = await reader.readexactly(6)
            await reader.readexactly(int.from_bytes(header[2:6], "big"))
            holders.append((reader, writer))
        await asyncio.sleep(GRACE + 0.5)  # held past the grace: the scenario
        _, writer = await _associate(receiver.port, "NEWCOMER")  # from 127.0.0.1
        reads = [asyncio.ensure_future(reader.read()) for reader, _ in holders]
        done, still = await asyncio.wait(reads, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        assert [task.result()[:1] for task in done] == [b"\x07"]  # one A-ABORT, then the close
        assert len(still) == 1  # the other keeps its slot
        for task in still:
            task.cancel()
        for _, holder_writer in holders:
            holder_writer.close()
        writer.close()
    after = metric_points(metrics)
    name = "oxidicom.associations.preempted"
    reason = {"oxidicom.preempt.reason": "host_share"}
    assert value(after, name, **reason) - value(before, name, **reason) == 1
