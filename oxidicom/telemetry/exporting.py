"""Turning exporting on: OpenTelemetry SDK providers, OTLP/HTTP exporters, instruments.

Nothing here runs unless an OTLP endpoint is configured: without one, no SDK
provider exists, no thread is started, no instrument is made. The standard
``OTEL_*`` variables are honoured, most of them read by the SDK itself:

- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
  ``..._METRICS_ENDPOINT``) turns export on; ``OTEL_EXPORTER_OTLP_HEADERS``,
  ``..._TIMEOUT``, ``..._COMPRESSION``, ``..._CERTIFICATE`` shape it;
- ``OTEL_SDK_DISABLED=true``, ``OTEL_TRACES_EXPORTER=none``,
  ``OTEL_METRICS_EXPORTER=none`` turn all or one signal off;
- ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the service (the
  defaults: ``service.name=oxidicom``, and a random ``service.instance.id`` per process
  so that replicas and worker processes export separately);
- ``OTEL_BSP_*`` (span batching) and ``OTEL_METRIC_EXPORT_INTERVAL`` (default 60 s).

Only the ``http/protobuf`` OTLP protocol is built in.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Final

from opentelemetry.metrics import CallbackOptions, Histogram, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Tracer

from oxidicom.support.process import instance_id
from oxidicom.telemetry.tallies import TALLIES

log = logging.getLogger("oxidicom.telemetry")

#: Association durations span milliseconds (an echo) to hours (a whole study).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


@dataclass
class Exporting:
    """The live SDK objects; absent altogether when nothing is exported."""

    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None
    tracer: Tracer | None
    duration_histogram: Histogram | None
    endpoint: str

    def shutdown(self, timeout_millis: int = 10_000) -> None:
        """Export what is pending and stop (blocking: run it in an executor)."""
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(timeout_millis)
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown(timeout_millis)


def _flag(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip().lower()


def signal_wanted(environ: Mapping[str, str], signal: str) -> bool:
    """True when ``signal`` (``TRACES`` or ``METRICS``) has an OTLP endpoint and is not off."""
    if _flag(environ, "OTEL_SDK_DISABLED") == "true":
        return False
    if _flag(environ, f"OTEL_{signal}_EXPORTER") == "none":
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()
    )


def build_resource() -> Resource:
    """Our defaults under whatever OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME say."""
    try:
        ours_version = version("oxidicom")
    except PackageNotFoundError:  # running from a source tree that is not installed
        ours_version = "unknown"
    defaults: dict[str, str | int] = {
        "service.name": "oxidicom",
        "service.version": ours_version,
        "service.instance.id": instance_id(),
        "process.pid": os.getpid(),
        "host.name": socket.gethostname(),
    }
    from_env = OTELResourceDetector().detect().attributes
    return Resource.create({k: v for k, v in defaults.items() if k not in from_env})


#: ``oxidicom.transport`` of the instance counters: how the instances arrived.
_DIMSE: Final = {"oxidicom.transport": "dimse"}
_DICOMWEB: Final = {"oxidicom.transport": "dicomweb"}


def _observe(value: int) -> Iterable[Observation]:
    return (Observation(value),)


def _register_instruments(meter_provider: MeterProvider) -> Histogram:
    meter = meter_provider.get_meter("oxidicom")
    tallies = TALLIES

    def stored(_: CallbackOptions) -> Iterable[Observation]:
        return (
            Observation(tallies.instances_stored, _DIMSE),
            Observation(tallies.dicomweb_instances_stored, _DICOMWEB),
        )

    def failed(_: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(n, {"dicom.status": status, **transport})
            for counts, transport in (
                (tallies.instances_failed, _DIMSE),
                (tallies.dicomweb_instances_failed, _DICOMWEB),
            )
            for status, n in list(counts.items())
        ]

    def received(_: CallbackOptions) -> Iterable[Observation]:
        return (
            Observation(tallies.bytes_received, _DIMSE),
            Observation(tallies.dicomweb_bytes_received, _DICOMWEB),
        )

    def active(_: CallbackOptions) -> Iterable[Observation]:
        return _observe(tallies.active_associations)

    def rejected(_: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(n, {"oxidicom.reject.reason": reason})
            for reason, n in list(tallies.associations_rejected.items())
        ]

    def preempted(_: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(n, {"oxidicom.preempt.reason": reason})
            for reason, n in list(tallies.associations_preempted.items())
        ]

    def evicted(_: CallbackOptions) -> Iterable[Observation]:
        return _observe(tallies.connections_evicted)

    def exhausted(_: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(n, {"oxidicom.where": where})
            for where, n in list(tallies.descriptors_exhausted.items())
        ]

    def published(_: CallbackOptions) -> Iterable[Observation]:
        return _observe(tallies.registrations_published)

    def publish_failed(_: CallbackOptions) -> Iterable[Observation]:
        return _observe(tallies.registrations_failed)

    def broker_connected(_: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(up, {"messaging.system": kind.lower()})
            for kind, up in list(tallies.broker_connected.items())
        ]

    def broker_faults(_: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(n, {"messaging.system": kind.lower(), "error.type": fault})
            for (kind, fault), n in list(tallies.broker_faults.items())
        ]

    def unwritten(_: CallbackOptions) -> Iterable[Observation]:
        return _observe(tallies.registrations_unwritten)

    def lonk_sent(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"lonk.kind": k}) for k, n in list(tallies.lonk_sent.items())]

    def lonk_dropped(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"lonk.reason": r}) for r, n in list(tallies.lonk_dropped.items())]

    def outbox_depth(_: CallbackOptions) -> Iterable[Observation]:
        read = tallies.outbox_depth
        if read is None:
            return ()
        try:
            return _observe(int(read()))
        except Exception:  # a broken callback must not stop the other metrics
            log.debug("the outbox depth callback failed", exc_info=True)
            return ()

    counter = meter.create_observable_counter
    counter(
        "oxidicom.instances.stored", [stored], "{instance}", "instances stored at their final path"
    )
    counter(
        "oxidicom.instances.failed",
        [failed],
        "{instance}",
        "instances refused or not written, by C-STORE status (dicom.status)",
    )
    counter("oxidicom.bytes.received", [received], "By", "bytes received from DICOM peers")
    meter.create_observable_up_down_counter(
        "oxidicom.associations.active", [active], "{association}", "associations accepted, running"
    )
    counter(
        "oxidicom.associations.rejected",
        [rejected],
        "{association}",
        "associations rejected (A-ASSOCIATE-RJ), by oxidicom.reject.reason",
    )
    counter(
        "oxidicom.associations.preempted",
        [preempted],
        "{association}",
        "associations aborted to give their slot to a new one, by oxidicom.preempt.reason",
    )
    counter(
        "oxidicom.connections.evicted",
        [evicted],
        "{connection}",
        "connections without an association or HTTP request closed beyond the pending cap",
    )
    counter(
        "oxidicom.descriptors.exhausted",
        [exhausted],
        "{error}",
        "EMFILE/ENFILE met (out of file descriptors), by oxidicom.where",
    )
    counter(
        "oxidicom.registrations.published",
        [published],
        "{registration}",
        "series registrations published to the Celery queue",
    )
    counter(
        "oxidicom.registrations.failed",
        [publish_failed],
        "{registration}",
        "attempts to publish a series registration that failed",
    )
    counter(
        "oxidicom.broker.faults",
        [broker_faults],
        "{fault}",
        "failed connects and publishes to the Celery broker, by messaging.system and"
        " error.type (unreachable, authentication, read_only, out_of_memory, ...)",
    )
    meter.create_observable_gauge(
        "oxidicom.broker.connected",
        [broker_connected],
        "1",
        "1 while connected to the Celery broker, else 0, by messaging.system",
    )
    counter("oxidicom.lonk.sent", [lonk_sent], "{message}", "LONK messages sent, by lonk.kind")
    counter(
        "oxidicom.lonk.dropped",
        [lonk_dropped],
        "{message}",
        "LONK messages not sent, by lonk.reason",
    )
    meter.create_observable_gauge(
        "oxidicom.registrations.unwritten",
        [unwritten],
        "{registration}",
        "series registrations the outbox could not take yet (kept in the journal, retried)",
    )
    meter.create_observable_gauge(
        "oxidicom.outbox.depth", [outbox_depth], "{registration}", "registrations waiting"
    )
    return meter.create_histogram(
        "oxidicom.association.duration",
        "s",
        "duration of associations, by oxidicom.association.outcome",
        explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
    )


def start_exporting(
    environ: Mapping[str, str],
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> Exporting | None:
    """Make the providers the environment asks for; None when it asks for none.

    ``span_exporter`` and ``metric_reader`` replace the OTLP ones (tests pass the SDK's
    in-memory exporters).
    """
    traces = span_exporter is not None or signal_wanted(environ, "TRACES")
    metrics = metric_reader is not None or signal_wanted(environ, "METRICS")
    if not traces and not metrics:
        return None
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        protocol = _flag(environ, name)
        if protocol and protocol != "http/protobuf":
            log.warning("%s=%s is not supported: exporting with http/protobuf", name, protocol)
    resource = build_resource()
    tracer_provider = tracer = None
    if traces:
        tracer_provider = TracerProvider(resource=resource)
        if span_exporter is not None:
            tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        tracer = tracer_provider.get_tracer("oxidicom")
    meter_provider = histogram = None
    if metrics:
        if metric_reader is None:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )

            metric_reader = PeriodicExportingMetricReader(OTLPMetricExporter())
        meter_provider = MeterProvider(metric_readers=[metric_reader], resource=resource)
        histogram = _register_instruments(meter_provider)
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or "per-signal endpoints"
    return Exporting(tracer_provider, meter_provider, tracer, histogram, endpoint)
