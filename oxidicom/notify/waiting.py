"""Waiting for an event with a bound, in tasks that are stopped by cancellation.

Not ``asyncio.wait_for(event.wait(), timeout)``: on CPython 3.11 it swallows a
cancellation that arrives once the event is set but before the waiting task resumes (the
inner wait is done: its result is returned, the cancellation is lost; gh-86296, fixed in
3.12). A background loop that waits so then runs on after ``task.cancel()``, and whoever
awaits its end waits for ever: a receiver's stop hung so after its series store
restarted (the sync task is woken at every failed call). ``asyncio.timeout`` keeps the
cancellation.

Libraries still wait so on 3.11 (aiormq's connection timeout, which aio-pika's connect
goes through): a publisher cancelled as its connection came up went on publishing, and
the receiver's stop hung. :func:`cancel_and_wait` therefore cancels again, every
:data:`RECANCEL_SECONDS`, a task still running after its cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Final

log = logging.getLogger("oxidicom.notify")

#: How long a cancelled task may run on before it is cancelled again: ample for the
#: cleanup a task does once cancelled (closing a connection), short for a stop.
RECANCEL_SECONDS: Final = 2.0


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
    cancelled = [task for task in tasks if not task.done()]
    pending = set(cancelled)
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
        for task in pending:
            # Its cancellation was lost in a library's wait (see above), or its cleanup
            # is slow: either way the stop must not wait for ever.
            log.debug(
                "task %s still runs %.1f s after its cancellation: cancelled again",
                task.get_name(),
                RECANCEL_SECONDS,
            )
            task.cancel()
    for task in cancelled:
        if not task.cancelled():
            task.exception()  # retrieved: a failure was logged where it happened
