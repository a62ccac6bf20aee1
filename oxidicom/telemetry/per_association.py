"""What telemetry knows of one association: its span, its counts, its log scope.

One :class:`AssociationTelemetry` is made per connection. Its hooks are called at
the association's milestones (request, accept or reject, each instance, the end),
never per PDU or fragment; :meth:`received` is called once per socket read. Without
an exporter there is no span: the hooks only add to integers.
"""

from __future__ import annotations

import time

from opentelemetry.metrics import Histogram
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from oxidicom.telemetry.tallies import TALLIES

#: The end reason of an association that finished with A-RELEASE.
RELEASED = "released"


class AssociationTelemetry:
    """Span, counts and log scope of one association (see :mod:`oxidicom.telemetry.logs`)."""

    __slots__ = (
        "_accepted",
        "_histogram",
        "_rejected",
        "_requested",
        "_span",
        "_started",
        "_started_ns",
        "_tracer",
        "bytes_received",
        "id",
        "instances_failed",
        "instances_stored",
        "peer_address",
        "peer_port",
    )

    def __init__(
        self,
        association_id: str,
        peer: str,
        tracer: Tracer | None = None,
        duration_histogram: Histogram | None = None,
    ) -> None:
        self.id = association_id
        address, _, port = peer.rpartition(":")
        self.peer_address = address or peer
        self.peer_port = int(port) if port.isdigit() else None
        self._tracer = tracer
        self._histogram = duration_histogram
        self._span = None
        self._started = time.monotonic()
        self._started_ns = time.time_ns()
        self._accepted = False
        self._requested = False
        self._rejected: str | None = None
        self.instances_stored = 0
        self.instances_failed = 0
        self.bytes_received = 0

    # -- log scope (oxidicom.telemetry.logs.AssociationScope) --------------------------------------

    def trace_ids(self) -> tuple[str, str] | None:
        """(trace id, span id) in hex, when the association is traced."""
        span = self._span
        if span is None:
            return None
        context = span.get_span_context()
        return f"{context.trace_id:032x}", f"{context.span_id:016x}"

    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` of the association's span: store it, link to it later."""
        span = self._span
        if span is None:
            return None
        context = span.get_span_context()
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"

    # -- hooks ---------------------------------------------------------------------------

    def received(self, size: int) -> None:
        """``size`` bytes came off the socket (once per read)."""
        self.bytes_received += size
        TALLIES.bytes_received += size

    def requested(self, calling_ae_title: str, called_ae_title: str) -> None:
        """A-ASSOCIATE-RQ arrived: the span starts (back-dated to the connection)."""
        self._requested = True
        if self._tracer is None or self._span is not None:
            return
        attributes: dict[str, str | int] = {
            "oxidicom.association.id": self.id,
            "dicom.calling_ae_title": calling_ae_title,
            "dicom.called_ae_title": called_ae_title,
            "network.transport": "tcp",
            "network.peer.address": self.peer_address,
        }
        if self.peer_port is not None:
            attributes["network.peer.port"] = self.peer_port
        self._span = self._tracer.start_span(
            "dicom.association",
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=self._started_ns,
        )

    def accepted(self) -> None:
        self._accepted = True
        TALLIES.active_associations += 1

    def rejected(self, detail: str, reason: str) -> None:
        """A-ASSOCIATE-RJ sent: ``detail`` for the span, ``reason`` a short label to count."""
        self._rejected = detail
        TALLIES.associations_rejected[reason] += 1
        if self._span is not None:
            self._span.set_attribute("oxidicom.reject.reason", reason)

    def instance_stored(self) -> None:
        self.instances_stored += 1
        TALLIES.instances_stored += 1

    def instance_failed(self, status: int) -> None:
        self.instances_failed += 1
        TALLIES.instances_failed[f"{status:04X}"] += 1

    def ended(self, reason: str) -> None:
        """The association is over; anything but a release is an error of the span."""
        if self._accepted:
            self._accepted = False
            TALLIES.active_associations -= 1
        if self._rejected is not None:
            outcome, error = "rejected", f"rejected: {self._rejected}"
        elif reason == RELEASED:
            outcome, error = RELEASED, None
        else:
            outcome = "aborted" if reason.startswith("aborted") else "closed"
            error = reason
        histogram = self._histogram
        if histogram is not None and self._requested:
            histogram.record(
                time.monotonic() - self._started, {"oxidicom.association.outcome": outcome}
            )
        span = self._span
        if span is None:
            return
        span.set_attributes(
            {
                "oxidicom.association.outcome": outcome,
                "oxidicom.instances.stored": self.instances_stored,
                "oxidicom.instances.failed": self.instances_failed,
                "oxidicom.bytes.received": self.bytes_received,
            }
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()
