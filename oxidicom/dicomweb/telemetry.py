"""What telemetry knows of one STOW-RS request: a span, counts, the log scope.

A request is what an association is for C-STORE, so it reuses the association's
telemetry object (its log scope and ``traceparent`` are what the registration's publish
span links to) with its own span name and attributes, and counts its instances and bytes
under ``oxidicom.transport=dicomweb``. It holds no association slot and records no
association duration.
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from oxidicom import telemetry
from oxidicom.telemetry.per_association import AssociationTelemetry
from oxidicom.telemetry.tallies import TALLIES

SPAN_NAME = "dicomweb.stow"


class RequestTelemetry(AssociationTelemetry):
    """Span and counts of one STOW-RS request (see :class:`AssociationTelemetry`)."""

    __slots__ = ()

    def __init__(self, request_id: str, peer: str, tracer: Tracer | None = None) -> None:
        super().__init__(request_id, peer, tracer)

    def started(self, method: str, path: str, pacs_name: str, user: str | None) -> None:
        """The request was authenticated and its body is about to be read."""
        self._requested = True
        if self._tracer is None or self._span is not None:
            return
        attributes: dict[str, str | int] = {
            "oxidicom.association.id": self.id,
            "oxidicom.transport": "dicomweb",
            "oxidicom.pacs_name": pacs_name,
            "http.request.method": method,
            "url.path": path,
            "network.peer.address": self.peer_address,
        }
        if user is not None:
            attributes["enduser.id"] = user
        if self.peer_port is not None:
            attributes["network.peer.port"] = self.peer_port
        self._span = self._tracer.start_span(
            SPAN_NAME, kind=SpanKind.SERVER, attributes=attributes, start_time=self._started_ns
        )

    def received(self, size: int) -> None:
        self.bytes_received += size
        TALLIES.dicomweb_bytes_received += size

    def instance_stored(self) -> None:
        self.instances_stored += 1
        TALLIES.dicomweb_instances_stored += 1

    def instance_failed(self, status: int) -> None:
        self.instances_failed += 1
        TALLIES.dicomweb_instances_failed[f"{status:04X}"] += 1

    def finished(self, http_status: int, error: str | None) -> None:
        """The response is decided (or the client went away: ``error`` says so)."""
        span = self._span
        if span is None:
            return
        span.set_attributes(
            {
                "http.response.status_code": http_status,
                "oxidicom.instances.stored": self.instances_stored,
                "oxidicom.instances.failed": self.instances_failed,
                "oxidicom.bytes.received": self.bytes_received,
            }
        )
        if error is not None or http_status >= 500:
            span.set_status(Status(StatusCode.ERROR, error or f"HTTP {http_status}"))
        span.end()
        self._span = None


def request_telemetry(request_id: str, peer: str) -> RequestTelemetry:
    """The telemetry of a new request (with a span when traces are exported)."""
    return RequestTelemetry(request_id, peer, telemetry.tracer())
