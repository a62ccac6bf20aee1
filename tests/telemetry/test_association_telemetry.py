"""A real receiver (in this process) traced and measured into the SDK's in-memory exporters.

dcmtk's storescu sends the instances; a raw client aborts. Spans and metrics are
read back through ``InMemorySpanExporter`` and ``InMemoryMetricReader``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from oxidicom import telemetry
from oxidicom.aio.server import Receiver
from oxidicom.telemetry import TALLIES
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.conftest import require_tool
from tests.telemetry.helpers import (
    associate_then_abort,
    association_spans,
    echo_request,
    in_process_receiver,
    metric_points,
    value,
)

STORESCU = "/usr/bin/storescu"


@pytest.fixture
def exporters() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    spans = InMemorySpanExporter()
    metrics = InMemoryMetricReader()
    assert telemetry.setup({}, span_exporter=spans, metric_reader=metrics)
    yield spans, metrics
    telemetry.shutdown()


async def storescu(port: int, *files: Path) -> int:
    require_tool(STORESCU)
    process = await asyncio.create_subprocess_exec(
        STORESCU,
        "-aet",
        "TRACEDPACS",
        "-aec",
        "ChRIS",
        "127.0.0.1",
        str(port),
        *map(str, files),
        env={**os.environ, "TCP_NODELAY": "1"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait()


async def test_association_span_has_its_attributes_and_metrics_count_it(
    tmp_path: Path, exporters: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    spans, metrics = exporters
    good = [write_part10(mr_instance(instance_number=n), tmp_path / f"{n}.dcm") for n in (1, 2, 3)]
    bad = write_part10(mr_instance(instance_number=4, PatientID=None), tmp_path / "bad.dcm")
    stored_before = TALLIES.instances_stored
    failed_before = TALLIES.instances_failed["C001"]
    bytes_before = TALLIES.bytes_received
    async with in_process_receiver(tmp_path / "rx") as receiver:
        await storescu(receiver.port, *good, bad)
        (span,) = association_spans(spans)
        points = metric_points(metrics)
    attributes = dict(span.attributes or {})
    assert span.kind is SpanKind.SERVER
    assert attributes["dicom.calling_ae_title"] == "TRACEDPACS"
    assert attributes["dicom.called_ae_title"] == "ChRIS"
    assert attributes["network.peer.address"] == "127.0.0.1"
    assert isinstance(attributes["network.peer.port"], int) and attributes["network.peer.port"] > 0
    assert str(attributes["oxidicom.association.id"]).endswith("-1")
    assert attributes["oxidicom.instances.stored"] == 3
    assert attributes["oxidicom.instances.failed"] == 1
    total = sum(p.stat().st_size for p in (*good, bad))
    assert attributes["oxidicom.bytes.received"] > total - 4 * 132  # minus each preamble
    assert attributes["oxidicom.association.outcome"] == "released"
    assert span.status.status_code is StatusCode.UNSET
    assert span.end_time is not None and span.start_time is not None
    assert span.end_time > span.start_time

    dimse = {"oxidicom.transport": "dimse"}
    assert value(points, "oxidicom.instances.stored", **dimse) == stored_before + 3
    assert value(points, "oxidicom.instances.failed", **{"dicom.status": "C001", **dimse}) == (
        failed_before + 1
    )
    assert (
        value(points, "oxidicom.bytes.received", **dimse) - bytes_before
        == (attributes["oxidicom.bytes.received"])
    )
    assert value(points, "oxidicom.associations.active") == 0
    (duration,) = [
        p
        for p in points["oxidicom.association.duration"]
        if dict(p.attributes) == {"oxidicom.association.outcome": "released"}
    ]
    assert duration.count == 1 and duration.sum > 0


async def test_aborted_association_span_has_error_status_with_the_reason(
    tmp_path: Path, exporters: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    spans, metrics = exporters
    async with in_process_receiver(tmp_path) as receiver:
        await associate_then_abort(receiver.port)
        (span,) = association_spans(spans)
        points = metric_points(metrics)
    assert span.status.status_code is StatusCode.ERROR
    assert "aborted by the peer" in (span.status.description or "")
    assert dict(span.attributes or {})["oxidicom.association.outcome"] == "aborted"
    assert dict(span.attributes or {})["dicom.calling_ae_title"] == "ABORTER"
    aborted = [
        p
        for p in points["oxidicom.association.duration"]
        if dict(p.attributes) == {"oxidicom.association.outcome": "aborted"}
    ]
    assert aborted and aborted[0].count == 1


async def test_rejected_association_span_has_error_status(
    tmp_path: Path, exporters: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    spans, _ = exporters
    async with in_process_receiver(tmp_path, OXIDICOM_LISTENER_THREADS="1") as receiver:
        held_reader, held_writer = await asyncio.open_connection("127.0.0.1", receiver.port)
        held_writer.write(echo_request("HOLDER"))
        assert (await held_reader.readexactly(6))[0] == 0x02  # accepted: the one slot is taken
        await associate_expecting_reject(receiver)
        held_writer.close()
        rejected = [
            s
            for s in association_spans(spans)
            if dict(s.attributes or {})["dicom.calling_ae_title"] == "ABORTER"
        ]
    (span,) = rejected
    assert span.status.status_code is StatusCode.ERROR
    assert (span.status.description or "").startswith("rejected: too many associations")
    assert dict(span.attributes or {})["oxidicom.association.outcome"] == "rejected"


async def associate_expecting_reject(receiver: Receiver) -> None:
    before = set(receiver.context.connections)
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    writer.write(echo_request())
    header = await reader.readexactly(6)
    assert header[0] == 0x03, f"expected A-ASSOCIATE-RJ, got PDU type {header[0]:#04x}"
    await reader.readexactly(int.from_bytes(header[2:6], "big"))
    (protocol,) = receiver.context.connections - before
    writer.close()
    await asyncio.wait_for(protocol.closed, 10)  # the receiver saw the connection end


async def test_without_an_endpoint_no_span_is_made(tmp_path: Path) -> None:
    assert not telemetry.setup({})
    assert not telemetry.enabled()
    stored_before = TALLIES.instances_stored
    async with in_process_receiver(tmp_path) as receiver:
        await associate_then_abort(receiver.port)
    assert telemetry.association("x-1", "127.0.0.1:1").trace_ids() is None
    assert TALLIES.instances_stored == stored_before
