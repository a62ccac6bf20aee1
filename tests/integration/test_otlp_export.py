"""A real receiver process exports over OTLP/HTTP to an endpoint served by this test.

The endpoint is a small HTTP server decoding the protobuf requests with the
``opentelemetry-proto`` package, as a collector would. The receiver is configured
only through the standard ``OTEL_*`` variables; spans and metrics are flushed when it
stops on SIGTERM.
"""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tests.dicom_factory import mr_instance, write_part10
from tests.integration.conftest import require_tool
from tests.integration.receiver import start_receiver
from tests.integration.services import (
    AMQP_URL,
    NATS,
    NATS_URL,
    RABBITMQ,
    delete_queue,
    require_service,
    unique,
)
from tests.telemetry.helpers import echo_request

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"
ECHOSCU = "/usr/bin/echoscu"


class Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, bytes, str]] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def traces(self) -> list[ExportTraceServiceRequest]:
        return [
            ExportTraceServiceRequest.FromString(body)
            for path, body, _ in self.requests
            if path == "/v1/traces"
        ]

    def metrics(self) -> list[ExportMetricsServiceRequest]:
        return [
            ExportMetricsServiceRequest.FromString(body)
            for path, body, _ in self.requests
            if path == "/v1/metrics"
        ]


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        with self.server.lock:
            self.server.requests.append((self.path, body, encoding))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _attributes(items: object) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in items:  # type: ignore[attr-defined]
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value"))
    return out


def _abort_after_associating(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(echo_request())
        header = sock.recv(6, socket.MSG_WAITALL)
        assert header[0] == 0x02
        sock.recv(int.from_bytes(header[2:6], "big"), socket.MSG_WAITALL)
        sock.sendall(bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0]))  # A-ABORT, service user
        assert sock.recv(1) == b""  # the receiver closed


def test_spans_and_metrics_reach_an_otlp_http_endpoint(
    tmp_path: Path, collector: Collector
) -> None:
    require_tool(STORESCU)
    require_tool(ECHOSCU)
    files = [write_part10(mr_instance(instance_number=n), tmp_path / f"{n}.dcm") for n in (1, 2, 3)]
    receiver = start_receiver(
        tmp_path / "rx",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
            "OTEL_SERVICE_NAME": "oxidicom-under-test",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci,k8s.pod.name=rx-0",
        },
    )
    pids = receiver.serving_pids()
    try:
        receiver.wait_for_log(
            rf"OpenTelemetry: exporting traces and metrics to {collector.endpoint}"
        )
        stored = subprocess.run(
            [STORESCU, "-aet", "OTLPPACS", "-aec", "ChRIS", "127.0.0.1", str(receiver.port)]
            + [str(f) for f in files],
            capture_output=True,
            timeout=60,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        assert stored.returncode == 0, stored.stderr
        echoed = subprocess.run(
            [ECHOSCU, "-aet", "OTLPECHO", "-aec", "ChRIS", "127.0.0.1", str(receiver.port)],
            capture_output=True,
            timeout=60,
        )
        assert echoed.returncode == 0, echoed.stderr
        _abort_after_associating(receiver.port)
    finally:
        assert receiver.stop() == 0

    assert {encoding for _, _, encoding in collector.requests} == {"gzip"}
    traces = collector.traces()
    assert traces, f"no trace export; requests: {[p for p, _, _ in collector.requests]}"
    spans = {}
    for request in traces:
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            assert resource["service.name"] == "oxidicom-under-test"
            assert resource["deployment.environment"] == "ci"
            assert resource["k8s.pod.name"] == "rx-0"
            assert resource["process.pid"] in pids  # its workers', or its own
            assert len(str(resource["service.instance.id"])) == 36
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes = _attributes(span.attributes)
                    spans[attributes["dicom.calling_ae_title"]] = (span, attributes)
    assert set(spans) == {"OTLPPACS", "OTLPECHO", "ABORTER"}
    span, attributes = spans["OTLPPACS"]
    assert span.name == "dicom.association"
    assert attributes["oxidicom.instances.stored"] == 3
    assert attributes["oxidicom.instances.failed"] == 0
    assert attributes["oxidicom.bytes.received"] > sum(f.stat().st_size for f in files) - 3 * 132
    assert attributes["network.peer.address"] == "127.0.0.1"
    assert span.status.code == Status.STATUS_CODE_UNSET
    span, attributes = spans["ABORTER"]
    assert span.status.code == Status.STATUS_CODE_ERROR
    assert "aborted by the peer" in span.status.message
    # Association ids in the spans are the ones the log lines carry.
    for _, attributes in spans.values():
        assert f"[{attributes['oxidicom.association.id']}]" in receiver.log()

    # Each process exports its own: the last export of each, added up.
    metrics: dict[tuple[object, str], list[Any]] = {}
    for request in collector.metrics():
        for resource_metrics in request.resource_metrics:
            resource = _attributes(resource_metrics.resource.attributes)
            assert resource["service.name"] == "oxidicom-under-test"
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    key = (resource["process.pid"], metric.name)
                    metrics.setdefault(key, []).append(metric)
    last: dict[str, list[Any]] = {}
    for (_, name), found in metrics.items():
        last.setdefault(name, []).append(found[-1])

    def dimse(name: str) -> int:
        """Instances that came over DIMSE (oxidicom.transport=dimse), in every process."""
        return sum(
            int(p.as_int)
            for metric in last[name]
            for p in metric.sum.data_points
            if _attributes(p.attributes).get("oxidicom.transport") == "dimse"
        )

    assert dimse("oxidicom.instances.stored") == 3
    assert all(metric.sum.is_monotonic for metric in last["oxidicom.instances.stored"])
    assert [m.sum.data_points[0].as_int for m in last["oxidicom.associations.active"]] == [0] * (
        len(last["oxidicom.associations.active"])
    )
    assert dimse("oxidicom.bytes.received") >= (spans["OTLPPACS"][1]["oxidicom.bytes.received"])
    durations: Counter[str] = Counter()
    for metric in last["oxidicom.association.duration"]:
        for p in metric.histogram.data_points:
            durations[_attributes(p.attributes)["oxidicom.association.outcome"]] += p.count
    assert durations == {"released": 2, "aborted": 1}


def _metric_values(collector: Collector) -> dict[str, dict[tuple[tuple[str, object], ...], int]]:
    """Last exported value of every sum/gauge data point, by metric and attributes."""
    values: dict[str, dict[tuple[tuple[str, object], ...], int]] = {}
    for request in collector.metrics():
        for resource_metrics in request.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    if kind not in ("sum", "gauge"):
                        continue
                    for point in getattr(metric, kind).data_points:
                        key = tuple(sorted(_attributes(point.attributes).items()))
                        values.setdefault(metric.name, {})[key] = point.as_int
    return values


def test_registrations_and_lonk_are_traced_and_counted(
    tmp_path: Path, collector: Collector
) -> None:
    """The notification side feeds the same endpoint: a publish span linked to its
    association, published registrations, LONK messages by kind, the outbox depth."""
    require_tool(STORESCU)
    require_service("RabbitMQ", RABBITMQ)
    require_service("NATS", NATS)
    queue = unique("oxidicom-otlp-")
    files = [write_part10(mr_instance(instance_number=n), tmp_path / f"{n}.dcm") for n in (1, 2)]
    receiver = start_receiver(
        tmp_path / "rx",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OXIDICOM_AMQP_ADDRESS": AMQP_URL,
            "OXIDICOM_QUEUE_NAME": queue,
            "OXIDICOM_NATS_ADDRESS": NATS_URL,
            "OXIDICOM_ROOT_SUBJECT": unique("oxiotlp"),
            "OXIDICOM_PROGRESS_INTERVAL": "1h",
        },
    )
    try:
        stored = subprocess.run(
            [STORESCU, "-aet", "NOTIFYPACS", "-aec", "ChRIS", "127.0.0.1", str(receiver.port)]
            + [str(f) for f in files],
            capture_output=True,
            timeout=60,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        assert stored.returncode == 0, stored.stderr
        receiver.wait_for_log(r"registration sent: task")
    finally:
        assert receiver.stop() == 0
        delete_queue(queue)

    spans = {}
    for request in collector.traces():
        for resource_spans in request.resource_spans:
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    spans.setdefault(span.name, []).append(span)
    (association,) = [
        s
        for s in spans["dicom.association"]
        if _attributes(s.attributes)["dicom.calling_ae_title"] == "NOTIFYPACS"
    ]
    publishes = [s for name, found in spans.items() if name != "dicom.association" for s in found]
    assert len(publishes) == 1, sorted(spans)
    (publish,) = publishes
    assert [(link.trace_id, link.span_id) for link in publish.links] == [
        (association.trace_id, association.span_id)
    ]
    assert publish.status.code != Status.STATUS_CODE_ERROR

    values = _metric_values(collector)
    assert sum(values["oxidicom.registrations.published"].values()) == 1
    assert sum(values.get("oxidicom.registrations.failed", {}).values()) == 0
    sent = {dict(key).get("lonk.kind"): n for key, n in values["oxidicom.lonk.sent"].items()}
    # A one-hour interval: progress 1, the final progress 2, done.
    assert sent == {"progress": 2, "done": 1}
    assert list(values["oxidicom.outbox.depth"].values())[-1] == 0
