"""Long work on the event loop, cut into slices so that other peers are served between.

A STOW-RS request whose parts are already in the buffer is stored without a single
wait: 10 000 small parts in a row would keep every other peer (a C-ECHO, another
request) waiting for their whole duration. :meth:`TimeSlices.checkpoint` after each
unit of work gives the loop back once a slice is used up.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

#: Longest run without giving the loop back (seconds).
SLICE: Final = 0.005
#: And at most this many units of work (a checkpoint costs one loop iteration).
UNITS: Final = 64


class TimeSlices:
    """Counts units of work; yields to the loop when a slice is used up."""

    __slots__ = ("_slice", "_started", "_units", "_units_left")

    def __init__(self, slice_seconds: float = SLICE, units: int = UNITS) -> None:
        self._slice = slice_seconds
        self._units = units
        self._units_left = units
        # time.monotonic, not loop.time: uvloop's loop time stands still within an iteration.
        self._started = time.monotonic()

    async def checkpoint(self) -> None:
        """One unit of work is done: let other callbacks run if the slice is over."""
        self._units_left -= 1
        if self._units_left > 0 and time.monotonic() - self._started < self._slice:
            return
        await asyncio.sleep(0)
        self._units_left = self._units
        self._started = time.monotonic()
