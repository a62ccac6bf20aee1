"""Every A-ASSOCIATE-RJ is counted in ``oxidicom.associations.rejected`` by its reason."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from oxidicom import telemetry
from oxidicom.aio.server import Receiver
from tests.telemetry.helpers import (
    association_spans,
    echo_request,
    in_process_receiver,
    metric_points,
    value,
)

REJECTED = "oxidicom.associations.rejected"
REASON = "oxidicom.reject.reason"


@pytest.fixture
def exporters() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    spans = InMemorySpanExporter()
    metrics = InMemoryMetricReader()
    assert telemetry.setup({}, span_exporter=spans, metric_reader=metrics)
    yield spans, metrics
    telemetry.shutdown()


async def first_pdu_type(receiver: Receiver, calling: str) -> int:
    """Associate as ``calling``; the type of the answer, once the receiver has closed."""
    before = set(receiver.context.connections)
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    writer.write(echo_request(calling))
    header = await reader.readexactly(6)
    await reader.readexactly(int.from_bytes(header[2:6], "big"))
    (protocol,) = receiver.context.connections - before
    writer.close()
    await asyncio.wait_for(protocol.closed, 10)
    return header[0]


async def test_rejections_are_counted_by_reason(
    tmp_path: Path, exporters: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    spans, metrics = exporters
    before = metric_points(metrics)
    unknown_before = value(before, REJECTED, **{REASON: "calling_ae_title_not_recognized"})
    called_before = value(before, REJECTED, **{REASON: "called_ae_title_not_recognized"})
    async with in_process_receiver(
        tmp_path,
        OXIDICOM_SCP_ALLOWED_PEERS="ABORTER,KNOWN",
        OXIDICOM_SCP_CHECK_CALLED_AET="true",
        OXIDICOM_SCP_AET="NOTCHRIS",
    ) as receiver:
        # echo_request calls "ChRIS": with the check on and our title NOTCHRIS, refused.
        assert await first_pdu_type(receiver, "KNOWN") == 0x03
        assert await first_pdu_type(receiver, "STRANGER") == 0x03
    async with in_process_receiver(tmp_path / "2", OXIDICOM_SCP_ALLOWED_PEERS="KNOWN") as receiver:
        assert await first_pdu_type(receiver, "STRANGER") == 0x03
        assert await first_pdu_type(receiver, "STRANGER") == 0x03
        points = metric_points(metrics)
    assert value(points, REJECTED, **{REASON: "called_ae_title_not_recognized"}) == (
        called_before + 2
    )
    assert value(points, REJECTED, **{REASON: "calling_ae_title_not_recognized"}) == (
        unknown_before + 2
    )
    refused = [s for s in association_spans(spans) if s.attributes and REASON in s.attributes]
    assert {s.attributes[REASON] for s in refused} == {  # type: ignore[index]
        "called_ae_title_not_recognized",
        "calling_ae_title_not_recognized",
    }
    outcomes = [
        p
        for p in points["oxidicom.association.duration"]
        if dict(p.attributes or {}) == {"oxidicom.association.outcome": "rejected"}  # type: ignore[attr-defined]
    ]
    assert outcomes and outcomes[0].count >= 4  # type: ignore[attr-defined]


async def test_requests_over_the_rate_of_their_address_are_counted(
    tmp_path: Path, exporters: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    _, metrics = exporters
    reason = "request_rate_exceeded"
    before = value(metric_points(metrics), REJECTED, **{REASON: reason})
    async with in_process_receiver(tmp_path, OXIDICOM_MAX_ASSOCIATION_RATE="2/min") as receiver:
        answers = [await first_pdu_type(receiver, "KNOWN") for _ in range(5)]
        points = metric_points(metrics)
    assert answers == [0x02, 0x02, 0x03, 0x03, 0x03]  # A-ASSOCIATE-AC twice, then -RJ
    assert value(points, REJECTED, **{REASON: reason}) == before + 3
