"""A STOW-RS request's span and counts: the C-STORE counters, under oxidicom.transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from oxidicom import telemetry
from oxidicom.dicomweb.ingest import StowRequest
from oxidicom.dicomweb.telemetry import SPAN_NAME, request_telemetry
from oxidicom.scp.acceptance import AcceptancePolicy
from oxidicom.storage.series import SeriesRecord
from oxidicom.storage.writer import Store
from oxidicom.telemetry import TALLIES
from tests.dicom_factory import mr_instance
from tests.dicomweb_helpers import part10
from tests.telemetry.helpers import SilentNotifier, metric_points, value


@pytest.fixture
def exporters() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    spans = InMemorySpanExporter()
    metrics = InMemoryMetricReader()
    assert telemetry.setup({}, span_exporter=spans, metric_reader=metrics)
    yield spans, metrics
    telemetry.shutdown()


class TraceparentNotifier(SilentNotifier):
    """Keeps the trace context the registration would be stored with."""

    traceparent: str | None = None

    def association_ended(self, association_id: str, series: list[SeriesRecord]) -> None:
        self.traceparent = telemetry.current_traceparent()


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_request_span_and_dicomweb_counters(
    tmp_path: Path, exporters: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    spans, metrics = exporters
    store = Store(tmp_path / "files")
    store.prepare()
    notifier = TraceparentNotifier()
    stored_before = TALLIES.dicomweb_instances_stored
    failed_before = TALLIES.dicomweb_instances_failed["C000"]
    dimse_before = TALLIES.instances_stored
    tel = request_telemetry("abc-7", "127.0.0.1:40000")
    tel.started("POST", "/dicom-web/studies", "LABPACS", "LABPACS")
    stow = StowRequest(
        store=store,
        notifier=notifier,
        policy=AcceptancePolicy(ae_title="ChRIS", max_pdu_length=16384),
        telemetry=tel,
        pacs_name="LABPACS",
    )
    good = part10(mr_instance())
    assert (await stow.store_part(chunks(good))).stored
    assert not (await stow.store_part(chunks(b"not dicom"))).stored
    stow.end("completed")
    traceparent = tel.traceparent()
    tel.finished(202, None)

    (span,) = [s for s in spans.get_finished_spans() if s.name == SPAN_NAME]
    attributes = dict(span.attributes or {})
    assert span.kind is SpanKind.SERVER
    assert attributes["oxidicom.transport"] == "dicomweb"
    assert attributes["oxidicom.association.id"] == "abc-7"
    assert attributes["enduser.id"] == "LABPACS"
    assert attributes["http.response.status_code"] == 202
    assert attributes["oxidicom.instances.stored"] == 1
    assert attributes["oxidicom.instances.failed"] == 1
    assert attributes["oxidicom.bytes.received"] == len(good) + len(b"not dicom")
    # The registration links to the request's span, as to an association's.
    assert notifier.traceparent is not None and notifier.traceparent == traceparent

    points = metric_points(metrics)
    web = {"oxidicom.transport": "dicomweb"}
    assert value(points, "oxidicom.instances.stored", **web) == stored_before + 1
    assert value(points, "oxidicom.instances.failed", **{"dicom.status": "C000", **web}) == (
        failed_before + 1
    )
    assert TALLIES.instances_stored == dimse_before  # nothing counted as DIMSE
