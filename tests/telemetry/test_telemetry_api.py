"""The telemetry API the notification code calls, read back through in-memory exporters."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from oxidicom import telemetry
from oxidicom.support import process
from oxidicom.telemetry import TALLIES
from oxidicom.telemetry.exporting import build_resource, signal_wanted
from oxidicom.telemetry.logs import CURRENT_ASSOCIATION
from tests.telemetry.helpers import metric_points, value


@pytest.fixture
def exported() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    spans = InMemorySpanExporter()
    metrics = InMemoryMetricReader()
    telemetry.setup({}, span_exporter=spans, metric_reader=metrics)
    yield spans, metrics
    telemetry.shutdown()
    telemetry.observe_outbox_depth(None)


def traced_association() -> telemetry.AssociationTelemetry:
    association = telemetry.association("cafe-7", "10.1.2.3:4567")
    association.requested("PACS", "ChRIS")
    return association


def test_publish_span_is_linked_to_its_association_and_counted(exported) -> None:
    spans, metrics = exported
    association = traced_association()
    traceparent = association.traceparent()
    assert traceparent is not None and traceparent.startswith("00-")
    association.ended("released")
    before = TALLIES.registrations_published
    with telemetry.registration_publish(
        queue="main2",
        series_instance_uid="1.2.3",
        pacs_name="PACS",
        traceparent=traceparent,
        association_id="cafe-7",
        ndicom=5,
    ):
        pass
    (publish,) = [s for s in spans.get_finished_spans() if s.name == "publish main2"]
    (association_span,) = [s for s in spans.get_finished_spans() if s.name == "dicom.association"]
    assert publish.kind is SpanKind.PRODUCER
    assert publish.status.status_code is StatusCode.UNSET
    (link,) = publish.links
    assert link.context.trace_id == association_span.context.trace_id
    assert link.context.span_id == association_span.context.span_id
    attributes = dict(publish.attributes or {})
    assert attributes["messaging.destination.name"] == "main2"
    assert attributes["dicom.series_instance_uid"] == "1.2.3"
    assert attributes["oxidicom.association.id"] == "cafe-7"
    assert attributes["oxidicom.registration.ndicom"] == 5
    assert TALLIES.registrations_published == before + 1
    assert value(metric_points(metrics), "oxidicom.registrations.published") == before + 1


def test_a_publish_that_raises_is_a_failed_span_and_the_error_goes_on(exported) -> None:
    spans, metrics = exported
    before = TALLIES.registrations_failed
    with (
        pytest.raises(ConnectionError, match="broker gone"),
        telemetry.registration_publish(queue="q", series_instance_uid="1.2", pacs_name="P"),
    ):
        raise ConnectionError("broker gone")
    (publish,) = spans.get_finished_spans()
    assert publish.status.status_code is StatusCode.ERROR
    assert "broker gone" in (publish.status.description or "")
    assert publish.links == ()
    assert value(metric_points(metrics), "oxidicom.registrations.failed") == before + 1


def test_explicit_outcome_counts_once(exported) -> None:
    spans, _ = exported
    before = (TALLIES.registrations_published, TALLIES.registrations_failed)
    attempt = telemetry.registration_publish(
        queue="q", series_instance_uid="1.2", pacs_name="P", traceparent="not a traceparent"
    )
    attempt.failed("nack from the broker")
    attempt.failed("again")
    attempt.succeeded()
    (publish,) = spans.get_finished_spans()
    assert publish.status.description == "nack from the broker"
    assert (TALLIES.registrations_published, TALLIES.registrations_failed) == (
        before[0],
        before[1] + 1,
    )


def test_publish_links_to_the_association_being_handled_by_default(exported) -> None:
    spans, _ = exported
    association = traced_association()
    token = CURRENT_ASSOCIATION.set(association)
    try:
        assert telemetry.current_traceparent() == association.traceparent()
        telemetry.registration_publish(
            queue="q", series_instance_uid="1.2", pacs_name="P"
        ).succeeded()
    finally:
        CURRENT_ASSOCIATION.reset(token)
    assert telemetry.current_traceparent() is None
    (publish,) = [s for s in spans.get_finished_spans() if s.name == "publish q"]
    trace_id, span_id = association.trace_ids()  # type: ignore[misc]
    assert f"{publish.links[0].context.span_id:016x}" == span_id
    assert f"{publish.links[0].context.trace_id:032x}" == trace_id


def test_lonk_and_outbox_metrics(exported) -> None:
    _, metrics = exported
    sent = TALLIES.lonk_sent["progress"]
    dropped = TALLIES.lonk_dropped["rate_limited"]
    telemetry.lonk_sent("progress")
    telemetry.lonk_sent("progress")
    telemetry.lonk_sent("done")
    telemetry.lonk_dropped("rate_limited")
    depth = [7]
    telemetry.observe_outbox_depth(lambda: depth[0])
    points = metric_points(metrics)
    assert value(points, "oxidicom.lonk.sent", **{"lonk.kind": "progress"}) == sent + 2
    assert value(points, "oxidicom.lonk.dropped", **{"lonk.reason": "rate_limited"}) == dropped + 1
    assert value(points, "oxidicom.outbox.depth") == 7
    depth[0] = 2
    assert value(metric_points(metrics), "oxidicom.outbox.depth") == 2

    def broken() -> int:
        raise OSError("outbox unreadable")

    telemetry.observe_outbox_depth(broken)
    points = metric_points(metrics)
    assert "oxidicom.outbox.depth" not in points
    assert value(points, "oxidicom.lonk.sent", **{"lonk.kind": "done"}) >= 1


def test_hooks_are_harmless_without_export() -> None:
    assert not telemetry.setup({})
    attempt = telemetry.registration_publish(queue="q", series_instance_uid="1", pacs_name="P")
    with attempt:
        pass
    telemetry.lonk_dropped("unavailable")
    association = telemetry.association("a-1", "[::1]:104")
    association.requested("A", "B")
    association.ended("aborted: x")
    assert association.traceparent() is None
    assert association.peer_port == 104


def test_without_an_endpoint_the_sdk_is_never_imported() -> None:
    code = (
        "import sys, oxidicom.app.startup, oxidicom.telemetry as t;"
        "assert not t.setup();"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')"
        " or m.startswith('opentelemetry.exporter')))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("environ", "traces", "metrics"),
    [
        ({}, False, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_SDK_DISABLED": "true"}, False, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_METRICS_EXPORTER": "none"}, True, False),
    ],
)
def test_signals_follow_the_standard_variables(environ, traces, metrics) -> None:
    assert signal_wanted(environ, "TRACES") is traces
    assert signal_wanted(environ, "METRICS") is metrics


def test_resource_honours_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    ours = build_resource().attributes
    assert ours["service.name"] == "oxidicom"
    assert ours["service.instance.id"] == process.instance_id()
    assert ours["process.pid"] == os.getpid()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "pacs-gateway")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.instance.id=replica-a"
    )
    theirs = build_resource().attributes
    assert theirs["service.name"] == "pacs-gateway"
    assert theirs["deployment.environment"] == "test"
    assert theirs["service.instance.id"] == "replica-a"


def test_a_forked_worker_gets_its_own_instance_id() -> None:
    parent = process.instance_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        os.write(write, process.instance_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child and child != parent
    assert process.instance_id() == parent


def test_operations_page_lists_exactly_the_metrics_exported(exported) -> None:
    from pathlib import Path

    _, metrics = exported
    association = telemetry.association("doc-1", "127.0.0.1:5")
    association.requested("A", "B")
    association.accepted()
    association.instance_failed(0xC001)
    association.ended("released")
    refused = telemetry.association("doc-2", "127.0.0.1:6")
    refused.requested("A", "B")
    refused.rejected("calling AE title not recognized", "calling_ae_title_not_recognized")
    refused.ended("connection closed")
    telemetry.lonk_sent("done")
    telemetry.lonk_dropped("unavailable")
    telemetry.observe_outbox_depth(lambda: 0)
    telemetry.descriptors_exhausted("accept")
    telemetry.association_preempted(telemetry.PREEMPTED_HOST_SHARE)
    telemetry.broker_connected("Redis", True)
    telemetry.broker_fault("Redis", "read_only")
    exported_names = set(metric_points(metrics))
    operations = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    listed = set(re.findall(r"^\| `(oxidicom\.[a-z._]+)` \|", operations, re.M))
    assert listed == exported_names


def test_a_malformed_endpoint_stops_the_start_with_one_line(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OXIDICOM_", "OTEL_"))}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "otel-collector:4318"
    result = subprocess.run(
        [sys.executable, "-m", "oxidicom"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "oxidicom: OTEL_EXPORTER_OTLP_ENDPOINT='otel-collector:4318' is not valid: expected an"
        " http:// or https:// URL such as http://otel-collector:4318\n"
    )
    assert telemetry.environment_problem({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4318"}) is None


def test_the_broker_state_and_faults_are_exported_by_kind(exported) -> None:
    _, metrics = exported
    before = value(metric_points(metrics), "oxidicom.broker.faults", **_REDIS_READ_ONLY)
    telemetry.broker_connected("Redis", False)
    telemetry.broker_fault("Redis", "read_only")
    telemetry.broker_fault("Redis", "read_only")
    points = metric_points(metrics)
    assert value(points, "oxidicom.broker.connected", **{"messaging.system": "redis"}) == 0
    assert value(points, "oxidicom.broker.faults", **_REDIS_READ_ONLY) == before + 2
    telemetry.broker_connected("Redis", True)
    points = metric_points(metrics)
    assert value(points, "oxidicom.broker.connected", **{"messaging.system": "redis"}) == 1


_REDIS_READ_ONLY = {"messaging.system": "redis", "error.type": "read_only"}
