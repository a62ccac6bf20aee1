"""Futures that run on their own and that a clean stop must wait for."""

from __future__ import annotations

import asyncio
from typing import Any


class Background:
    """A set of running futures; each leaves it when done, :meth:`drain` waits for all."""

    def __init__(self) -> None:
        self._pending: set[asyncio.Future[Any]] = set()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, future: asyncio.Future[Any]) -> None:
        """Keep ``future`` (and so its task) alive until it is done."""
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait until every future added, including those added meanwhile, is done."""
        while self._pending:
            # Drop what was awaited here rather than wait for the done callbacks: since
            # Python 3.12 gather() over finished futures returns without yielding, and a
            # loop waiting for the callbacks would spin for ever.
            awaited = tuple(self._pending)
            await asyncio.gather(*awaited, return_exceptions=True)
            self._pending.difference_update(awaited)
