"""A warning that a flood repeats thousands of times, logged as a count instead.

The first occurrence is logged at once, with its details; those that follow within
``interval`` seconds are only counted, and one line with the count is logged when the
interval is over (or at :meth:`SummarizedWarning.flush`, at shutdown). While the
flood lasts that is one line per interval; once it is over, the next occurrence is
logged in full again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

#: Seconds between two summary lines of one warning during a flood.
SUMMARY_INTERVAL = 10.0


class SummarizedWarning:
    """One kind of warning: ``first % args`` at once, then ``summary % count`` per interval."""

    def __init__(
        self,
        logger: logging.Logger,
        first: str,
        summary: str,
        interval: float = SUMMARY_INTERVAL,
    ) -> None:
        self._log = logger
        self._first = first
        self._summary = summary
        self.interval = interval
        self._quiet_until = float("-inf")
        self._counted = 0
        self._timer: asyncio.TimerHandle | None = None

    def occurred(self, *args: object) -> None:
        """The event happened once more (``args`` fill in ``first`` if it is logged)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._counted and now >= self._quiet_until:
            self._log.warning(self._first, *args)
            self._quiet_until = now + self.interval
            return
        self._counted += 1
        if self._timer is None:
            # An empty context: the summary belongs to no association, whichever
            # association's callback happened to count first.
            self._timer = loop.call_at(self._quiet_until, self.flush, context=contextvars.Context())

    def flush(self) -> None:
        """Log the count now, if anything was counted."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._counted:
            return
        self._log.warning(self._summary, self._counted)
        self._counted = 0
        try:
            self._quiet_until = asyncio.get_running_loop().time() + self.interval
        except RuntimeError:  # no loop (flushed after the loop stopped): nothing to time
            self._quiet_until = float("-inf")
