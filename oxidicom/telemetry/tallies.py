"""Process-wide counts that the metric instruments report when they are collected.

The hot path only adds to plain integers here (tens of nanoseconds); the
OpenTelemetry SDK reads them through observable instruments at export time, in its
own thread. Every process keeps its own counts and exports them under its own
``service.instance.id``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class Tallies:
    """Counts since the process started (cumulative, as OTLP counters expect)."""

    __slots__ = (
        "active_associations",
        "associations_preempted",
        "associations_rejected",
        "broker_connected",
        "broker_faults",
        "bytes_received",
        "connections_evicted",
        "descriptors_exhausted",
        "dicomweb_bytes_received",
        "dicomweb_instances_failed",
        "dicomweb_instances_stored",
        "instances_failed",
        "instances_stored",
        "lonk_dropped",
        "lonk_sent",
        "outbox_depth",
        "registrations_failed",
        "registrations_published",
        "registrations_unwritten",
    )

    def __init__(self) -> None:
        self.instances_stored = 0
        #: By C-STORE status, as 4 hex digits (``"C001"``).
        self.instances_failed: Counter[str] = Counter()
        self.bytes_received = 0
        self.active_associations = 0
        #: By oxidicom.reject.reason (``too_many_associations``, ...).
        self.associations_rejected: Counter[str] = Counter()
        #: Aborted to give their slot to a new association, by oxidicom.preempt.reason
        #: (``below_min_rate``, ``host_share``).
        self.associations_preempted: Counter[str] = Counter()
        #: Connections without an association closed beyond the pending cap.
        self.connections_evicted = 0
        #: EMFILE/ENFILE met (accept, a file write, a callback), by where it was met.
        self.descriptors_exhausted: Counter[str] = Counter()
        self.registrations_published = 0
        #: The Celery broker connection by broker kind (``AMQP``, ``Redis``): 1 up, 0 not.
        self.broker_connected: dict[str, int] = {}
        #: Failed connects and publishes by (broker kind, fault kind: ``unreachable``,
        #: ``authentication``, ``read_only``, ``out_of_memory``, ...).
        self.broker_faults: Counter[tuple[str, str]] = Counter()
        self.registrations_failed = 0
        #: Registrations the outbox could not take yet (kept in the journal, retried).
        self.registrations_unwritten = 0
        #: By message kind (``progress``, ``done``, ``error``).
        self.lonk_sent: Counter[str] = Counter()
        #: By reason (``rate_limited``, ``unavailable``, ...).
        self.lonk_dropped: Counter[str] = Counter()
        #: The same three counts for instances received over DICOMweb (STOW-RS): the
        #: metrics carry them with ``oxidicom.transport`` ``dicomweb``, the above ``dimse``.
        self.dicomweb_instances_stored = 0
        self.dicomweb_instances_failed: Counter[str] = Counter()
        self.dicomweb_bytes_received = 0
        #: Reads the registration outbox's current depth; set by the outbox's owner.
        self.outbox_depth: Callable[[], int] | None = None


TALLIES = Tallies()
