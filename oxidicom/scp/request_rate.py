"""How often one address may ask for an association: a token bucket per address. Pure.

Opening an association costs the receiver more than the opener (a request decoded and
negotiated, an association logged, a slot looked at and perhaps a running one
preempted): without a bound, one address could make it do that as fast as it can send
requests. ``OXIDICOM_MAX_ASSOCIATION_RATE`` (``N/s`` or ``N/min``) bounds it: each
address has a bucket of N tokens that refills at N per unit of time, each A-ASSOCIATE-RQ
takes one, and a request that finds the bucket empty is rejected (A-ASSOCIATE-RJ,
transient, temporary congestion) before any slot is looked at. A sender that asks less
often than that never notices; one that asks more often gets N at once and then N per
unit of time, whatever it sends beyond.

Memory is bounded: at most :data:`MAX_HOSTS` buckets, the least recently used one is
forgotten first (a forgotten bucket is a full one: that address is forgiven).
"""

from __future__ import annotations

import msgspec

#: Buckets kept at most (about 100 bytes each). Beyond, the least recently used go: it
#: takes this many addresses asking within one refill to forgive one of them early.
MAX_HOSTS = 10_000

_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0}


class RequestRate(msgspec.Struct, frozen=True):
    """``count`` requests per ``per`` seconds (and at most ``count`` at once)."""

    count: int
    per: float

    def __str__(self) -> str:
        return f"{self.count}/{'s' if self.per == 1.0 else 'min'}"


def parse_request_rate(text: str) -> RequestRate | None:
    """``50/s``, ``600/min``, ``50`` (per second); ``0``: no limit (None)."""
    value = text.strip().lower()
    number, slash, unit = value.partition("/")
    try:
        count = int(number.strip())
        per = _UNITS[unit.strip()] if slash else 1.0
    except (KeyError, ValueError):
        raise ValueError("expected a rate such as 50/s or 600/min, or 0 (no limit)") from None
    if not 0 <= count <= 1_000_000:
        raise ValueError("expected a count from 0 to 1000000")
    return RequestRate(count, per) if count else None


class HostRequestLimit:
    """A token bucket per address: :meth:`allow` says whether one more request may go on."""

    __slots__ = ("_buckets", "_capacity", "_max_hosts", "_refill", "rate")

    def __init__(self, rate: RequestRate, max_hosts: int = MAX_HOSTS) -> None:
        self.rate = rate
        self._capacity = float(rate.count)
        self._refill = rate.count / rate.per  # tokens per second
        self._max_hosts = max_hosts
        #: Address -> (tokens, when counted); least recently used first.
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, host: str, now: float) -> bool:
        """One more request from ``host`` at ``now`` (monotonic seconds): True if it may
        go on (it took a token), False if the bucket is empty."""
        bucket = self._buckets.pop(host, None)
        if bucket is None:
            tokens = self._capacity
            if len(self._buckets) >= self._max_hosts:
                del self._buckets[next(iter(self._buckets))]
        else:
            tokens, then = bucket
            tokens = min(self._capacity, tokens + (now - then) * self._refill)
        allowed = tokens >= 1.0
        self._buckets[host] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)
