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

_Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


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

    def occurred(self, *args: object, logger: _Logger | None = None) -> None:
        """The event happened once more (``args`` fill in ``first`` if it is logged, by
        ``logger`` when given: an association's, with its id)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._counted and now >= self._quiet_until:
            (logger or self._log).warning(self._first, *args)
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


class SummarizedWarnings:
    """A :class:`SummarizedWarning` per key (a reason and a peer host, say).

    Each key is logged in full the first time and counted during its flood, so a flood
    from one peer hides neither another peer nor another reason. At most ``max_keys``
    keys: beyond, the rest share one catch-all, so a flood from many addresses costs
    bounded memory too.
    """

    def __init__(
        self,
        logger: logging.Logger,
        first: str,
        summary: str,
        max_keys: int = 256,
        interval: float = SUMMARY_INTERVAL,
    ) -> None:
        self._log = logger
        self._first = first
        #: ``summary % (count, key text)``.
        self._summary = summary
        self.max_keys = max_keys
        self.interval = interval
        self._warnings: dict[str, SummarizedWarning] = {}

    def occurred(self, key: str, *args: object, logger: _Logger | None = None) -> None:
        """The event happened once more for ``key`` (``args`` fill in ``first``)."""
        warning = self._warnings.get(key)
        if warning is None:
            if len(self._warnings) >= self.max_keys:
                key = "others"
                warning = self._warnings.get(key)
            if warning is None:
                # The key is text from the network (an AE title, an address): no % in it
                # may reach the format.
                summary = self._summary.replace("%s", key.replace("%", "%%"))
                warning = SummarizedWarning(self._log, self._first, summary, self.interval)
                self._warnings[key] = warning
        warning.occurred(*args, logger=logger)

    def flush(self) -> None:
        """Log every key's count now (at shutdown)."""
        for warning in self._warnings.values():
            warning.flush()
