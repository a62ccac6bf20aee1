"""Waiting for an event with a bound, in tasks that are stopped by cancellation.

Not ``asyncio.wait_for(event.wait(), timeout)``: on CPython 3.11 it swallows a
cancellation that arrives once the event is set but before the waiting task resumes (the
inner wait is done: its result is returned, the cancellation is lost; gh-86296, fixed in
3.12). A background loop that waits so then runs on after ``task.cancel()``, and whoever
awaits its end waits for ever: a receiver's stop hung so after its series store
restarted (the sync task is woken at every failed call). ``asyncio.timeout`` keeps the
cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set, at most ``timeout`` s (None: no bound); True if set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel these tasks and wait until each has ended.

    Their ends (cancelled, or failed) are not raised here; a cancellation of the caller
    is (``with suppress(CancelledError): await task`` would swallow that one too)."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in pending:
        if not task.cancelled():
            task.exception()  # retrieved: a failure was logged where it happened
