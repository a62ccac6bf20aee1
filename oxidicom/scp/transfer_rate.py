"""How many bytes an association received lately: what preemption judges it by.

When every association slot is taken and another peer asks for one, the receiver
aborts the running association that receives least, provided it is below
``OXIDICOM_MIN_TRANSFER_RATE`` (see :meth:`ScpService.acquire_slot`). The count
must cost next to nothing per read: :meth:`TransferMeter.add` is a comparison and an
addition; the time buckets roll only when a read (or a question) finds the current
one over, and a read never finds more than one over unless the peer went quiet.
"""

from __future__ import annotations

#: The span over which an association's rate is judged (seconds). Long enough that a
#: sender pausing between two series or waiting a few seconds on its own archive is
#: judged by what it did before; short enough that a peer that stopped sending loses
#: its slot to a waiting sender within seconds.
WINDOW = 10.0
#: Buckets per window: the judged span is between 8 and 10 s once an association is
#: older than the window.
BUCKETS = 5
#: A new association is never preempted before this age (seconds), then it is judged on
#: its whole life until it is older than the window. A real sender sends its first
#: instance within milliseconds of the A-ASSOCIATE-AC, so two seconds prove nothing
#: against it; and no burst of new associations can preempt each other in a loop.
GRACE = WINDOW / BUCKETS


class TransferMeter:
    """Bytes received per time bucket, over the last :data:`WINDOW` seconds."""

    __slots__ = ("_bucket_end", "_counts", "_index", "_width", "started")

    def __init__(self, now: float, window: float = WINDOW, buckets: int = BUCKETS) -> None:
        self._width = window / buckets
        self._counts = [0] * buckets
        self._index = 0
        self._bucket_end = now + self._width
        #: Where the measure starts: the association's start, or the end of a long wait
        #: on our own storage (:meth:`restart`).
        self.started = now

    def add(self, size: int, now: float) -> None:
        """``size`` bytes arrived at ``now`` (monotonic seconds)."""
        if now >= self._bucket_end:
            self._roll(now)
        self._counts[self._index] += size

    def restart(self, now: float) -> None:
        """Forget what was measured: the association starts over (and has its grace)."""
        self._counts = [0] * len(self._counts)
        self._index = 0
        self._bucket_end = now + self._width
        self.started = now

    def recent(self, now: float) -> tuple[int, float]:
        """(bytes, seconds): what arrived over the judged span that ends at ``now``."""
        if now >= self._bucket_end:
            self._roll(now)
        covered_from = self._bucket_end - self._width * len(self._counts)
        return sum(self._counts), now - max(covered_from, self.started)

    def rate(self, now: float) -> float | None:
        """The measured rate (bytes/s), or None for an association younger than :data:`GRACE`."""
        if now - self.started < GRACE:
            return None
        received, span = self.recent(now)
        return received / span if span > 0 else None

    def shortfall(self, now: float, min_rate: float) -> float | None:
        """The measured rate (bytes/s) when it is below ``min_rate``, else None.

        None as well for an association younger than :data:`GRACE`.
        """
        rate = self.rate(now)
        if rate is None or rate >= min_rate:
            return None
        return rate

    def _roll(self, now: float) -> None:
        counts = self._counts
        steps = int((now - self._bucket_end) // self._width) + 1
        size = len(counts)
        for _ in range(min(steps, size)):
            self._index = (self._index + 1) % size
            counts[self._index] = 0
        self._bucket_end += steps * self._width
