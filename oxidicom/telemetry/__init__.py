"""Telemetry: OpenTelemetry traces and metrics over OTLP/HTTP, and the hooks that feed them.

Nothing is exported, and no SDK object exists, unless ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or a per-signal endpoint) is set; see :mod:`oxidicom.telemetry.exporting` for every
variable honoured. Call :func:`setup` once in each process that serves (after any
fork: each process exports its own telemetry under its own ``service.instance.id``)
and :func:`shutdown` when it stops.

The hooks for the notification code (``oxidicom.notify``) are plain functions, cheap
enough to call on every message, and harmless when nothing is exported:

- :func:`lonk_sent` / :func:`lonk_dropped` per LONK message sent or not sent;
- :func:`registration_publish` around each attempt to publish a registration (a span
  linked to its association, and the published/failed counts);
- :func:`current_traceparent` while an association ends, to store with its outbox
  entries so that a later publish can link to it;
- :func:`observe_outbox_depth` once, by the outbox's owner; :func:`registrations_unwritten`
  when the outbox refuses registrations, or takes them again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from oxidicom.telemetry.logs import CURRENT_ASSOCIATION
from oxidicom.telemetry.per_association import RELEASED, AssociationTelemetry
from oxidicom.telemetry.registration import RegistrationPublish, start_publish
from oxidicom.telemetry.tallies import TALLIES, Tallies

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

    from oxidicom.telemetry.exporting import Exporting

__all__ = [
    "RELEASED",
    "TALLIES",
    "AssociationTelemetry",
    "RegistrationPublish",
    "Tallies",
    "association",
    "broker_connected",
    "broker_fault",
    "current_traceparent",
    "enabled",
    "environment_problem",
    "lonk_dropped",
    "lonk_sent",
    "observe_outbox_depth",
    "registration_publish",
    "registrations_unwritten",
    "setup",
    "shutdown",
    "tracer",
]

log = logging.getLogger("oxidicom.telemetry")

_exporting: Exporting | None = None


def _wanted(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in _ENDPOINTS)


_ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)


def environment_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """One line naming a malformed OTLP endpoint, or None (checked at start, exit 2)."""
    env = os.environ if environ is None else environ
    for name in _ENDPOINTS:
        value = env.get(name, "").strip()
        if not value:
            continue
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            return (
                f"{name}={value!r} is not valid: expected an http:// or https:// URL"
                " such as http://otel-collector:4318"
            )
    return None


def setup(
    environ: Mapping[str, str] | None = None,
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
) -> bool:
    """Start exporting if the environment asks for it; return whether anything is exported.

    ``span_exporter`` / ``metric_reader`` force export to them (for tests). Calling it
    again replaces the previous set-up (which is shut down first).
    """
    global _exporting
    env = os.environ if environ is None else environ
    if _exporting is not None:
        shutdown()
    if span_exporter is None and metric_reader is None and not _wanted(env):
        return False
    # The SDK is imported only here: without an endpoint it is never loaded.
    from oxidicom.telemetry.exporting import start_exporting

    _exporting = start_exporting(env, span_exporter=span_exporter, metric_reader=metric_reader)
    if _exporting is not None:
        signals = [
            name
            for name, on in (
                ("traces", _exporting.tracer is not None),
                ("metrics", _exporting.meter_provider is not None),
            )
            if on
        ]
        log.info("OpenTelemetry: exporting %s to %s", " and ".join(signals), _exporting.endpoint)
    return _exporting is not None


def shutdown(timeout_millis: int = 5_000) -> None:
    """Export what is pending and stop exporting (blocking; run it in an executor).

    Bounded: a collector that does not answer delays a stop by a few seconds, no more.
    """
    global _exporting
    exporting, _exporting = _exporting, None
    if exporting is not None:
        exporting.shutdown(timeout_millis)


def enabled() -> bool:
    """True while something is exported."""
    return _exporting is not None


# -- associations --------------------------------------------------------------------------


def association(association_id: str, peer: str) -> AssociationTelemetry:
    """The telemetry of a new connection from ``peer`` (``host:port``)."""
    exporting = _exporting
    if exporting is None:
        return AssociationTelemetry(association_id, peer)
    return AssociationTelemetry(
        association_id, peer, exporting.tracer, exporting.duration_histogram
    )


def tracer() -> Tracer | None:
    """The tracer while traces are exported (spans of other transports than DIMSE)."""
    exporting = _exporting
    return exporting.tracer if exporting is not None else None


def current_traceparent() -> str | None:
    """W3C ``traceparent`` of the association the running code works for, if traced.

    Valid while the association's events are handled, including
    ``Notifier.association_ended``: store it with the registration to link the
    publish span to the association even after a restart.
    """
    scope = CURRENT_ASSOCIATION.get()
    if isinstance(scope, AssociationTelemetry):
        return scope.traceparent()
    return None


# -- notifications -------------------------------------------------------------------------


def registration_publish(
    *,
    queue: str,
    series_instance_uid: str,
    pacs_name: str,
    traceparent: str | None = None,
    association_id: str | None = None,
    ndicom: int | None = None,
    system: str = "rabbitmq",
) -> RegistrationPublish:
    """Start one publish attempt of one registration (a span when traced).

    Use it as a context manager around the publish (success unless it raises), or
    call ``succeeded()`` / ``failed(reason)`` on the returned object, e.g. when the
    broker's confirm or nack arrives. ``traceparent`` is the association's
    (:func:`current_traceparent` at the end of the association); defaults to the
    association being handled, if any.
    """
    exporting = _exporting
    tracer = exporting.tracer if exporting is not None else None
    if tracer is not None and traceparent is None:
        traceparent = current_traceparent()
    return start_publish(
        tracer,
        traceparent=traceparent,
        queue=queue,
        series_instance_uid=series_instance_uid,
        pacs_name=pacs_name,
        association_id=association_id,
        ndicom=ndicom,
        system=system,
    )


def broker_connected(kind: str, up: bool) -> None:
    """The Celery broker connection (``kind``: AMQP, Redis) is up or not."""
    TALLIES.broker_connected[kind] = int(up)


def broker_fault(kind: str, fault: str) -> None:
    """A connect or publish to the Celery broker failed, for ``fault`` (a short kind)."""
    TALLIES.broker_faults[kind, fault] += 1


def lonk_sent(kind: str) -> None:
    """One LONK message went to NATS; ``kind`` is ``progress``, ``done`` or ``error``."""
    TALLIES.lonk_sent[kind] += 1


def lonk_dropped(reason: str) -> None:
    """One LONK message was not sent: ``rate_limited`` (an optional progress message
    inside PROGRESS_INTERVAL) or ``unavailable`` (NATS down, publish failed)."""
    TALLIES.lonk_dropped[reason] += 1


#: ``oxidicom.preempt.reason``: the association received less than the minimum rate.
PREEMPTED_BELOW_MIN_RATE = "below_min_rate"
#: ``oxidicom.preempt.reason``: its host held at least two slots more than the newcomer's.
PREEMPTED_HOST_SHARE = "host_share"


def association_preempted(reason: str) -> None:
    """A running association was aborted to give its slot to a new one, for ``reason``."""
    TALLIES.associations_preempted[reason] += 1


def connection_evicted() -> None:
    """A connection without an association (DIMSE) or a running request (HTTP) was
    closed: too many were open."""
    TALLIES.connections_evicted += 1


def descriptors_exhausted(where: str) -> None:
    """The process ran out of file descriptors (EMFILE) or the system did (ENFILE)."""
    TALLIES.descriptors_exhausted[where] += 1


def registrations_unwritten(count: int) -> None:
    """``count`` registrations wait for the outbox to be writable (kept in the journal)."""
    TALLIES.registrations_unwritten = count


def observe_outbox_depth(read: Callable[[], int] | None) -> None:
    """Register the function that says how many registrations wait in the outbox.

    It is called at each metric export from the SDK's export thread, not the event
    loop: return a count kept up to date in memory, and do no I/O. None unregisters.
    """
    TALLIES.outbox_depth = read
