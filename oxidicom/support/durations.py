"""Durations in humantime syntax (`5ms`, `2s`, `1m 30s`, `1h30m`), as the reference reads them."""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "nsec": 1e-9,
    "us": 1e-6,
    "usec": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_PART = re.compile(r"\s*(\d+)\s*([a-zµ]+)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raise ValueError unless every part is ``<integer><unit>``."""
    position, total, parts = 0, 0.0, 0
    stripped = text.strip()
    while position < len(stripped):
        match = _PART.match(stripped, position)
        if match is None or match.group(2) not in _UNITS:
            raise ValueError(f"not a duration: {text!r} (expected e.g. 500ms, 2s, 1m 30s)")
        total += int(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
        parts += 1
    if parts == 0:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 500ms, 2s, 1m 30s)")
    return total
