"""A span per registration publish, linked to the association the series came from.

A registration may be published long after its association ended (the outbox
replays it once the broker is back, perhaps after a restart), so the link is made
from the association's W3C ``traceparent`` string, which the outbox can store with
the registration.
"""

from __future__ import annotations

from types import TracebackType

from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import SpanContext

from oxidicom.telemetry.tallies import TALLIES

_PROPAGATOR = TraceContextTextMapPropagator()


def span_context_of(traceparent: str | None) -> SpanContext | None:
    """The span context a ``traceparent`` names, or None when it is missing or invalid."""
    if not traceparent:
        return None

    context = _PROPAGATOR.extract({"traceparent": traceparent})
    span_context = get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


class RegistrationPublish:
    """One attempt to publish one registration: call :meth:`succeeded` or :meth:`failed`.

    Used as a context manager it ends by itself: success when the block completes,
    failure (with the exception as the reason, which is re-raised) when it raises.
    Counts ``oxidicom.registrations.published`` / ``.failed`` once per attempt.
    """

    __slots__ = ("_done", "_span")

    def __init__(self, span: Span | None) -> None:
        self._span = span
        self._done = False

    def succeeded(self) -> None:
        if self._done:
            return
        self._done = True
        TALLIES.registrations_published += 1
        if self._span is not None:
            self._span.end()

    def failed(self, reason: str) -> None:
        if self._done:
            return
        self._done = True
        TALLIES.registrations_failed += 1
        if self._span is not None:
            self._span.set_status(Status(StatusCode.ERROR, reason))
            self._span.end()

    def __enter__(self) -> RegistrationPublish:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            self.succeeded()
            return
        if self._span is not None and not self._done:
            self._span.record_exception(error)
        self.failed(f"{kind.__name__ if kind else 'error'}: {error}")


def start_publish(
    tracer: Tracer | None,
    *,
    traceparent: str | None,
    queue: str,
    series_instance_uid: str,
    pacs_name: str,
    association_id: str | None,
    ndicom: int | None,
    system: str = "rabbitmq",
) -> RegistrationPublish:
    if tracer is None:
        return RegistrationPublish(None)
    attributes: dict[str, str | int] = {
        "messaging.system": system,
        "messaging.operation.type": "send",
        "messaging.destination.name": queue,
        "dicom.series_instance_uid": series_instance_uid,
        "dicom.calling_ae_title": pacs_name,
    }
    if association_id is not None:
        attributes["oxidicom.association.id"] = association_id
    if ndicom is not None:
        attributes["oxidicom.registration.ndicom"] = ndicom
    linked = span_context_of(traceparent)
    span = tracer.start_span(
        f"publish {queue}",
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        links=[Link(linked)] if linked is not None else None,
    )
    return RegistrationPublish(span)
