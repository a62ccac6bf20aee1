"""Running out of file descriptors is said, counted and summarized, never silent.

``EMFILE`` (this process is at its ``RLIMIT_NOFILE``) and ``ENFILE`` (the system is at
its limit) make accepts and file writes fail. The listeners' caps
(:mod:`oxidicom.app.descriptors`) keep connections from getting there; when it happens
all the same, it is logged once per place and interval with a count (a flood of
failed accepts is thousands per second) and counted in ``oxidicom.descriptors.exhausted``.

Where Python sees the error: the asyncio loop reports a failed ``accept`` to its
exception handler (:func:`install_loop_handler`); a file that cannot be opened reaches
the storage error path (:func:`report`). uvloop (libuv) does not tell Python about a
failed accept at all: it accepts and closes the connection with a descriptor it keeps
for that, so the peer sees a reset and nothing is said. That is why the caps keep
headroom, rather than relying on this.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any

from oxidicom import telemetry
from oxidicom.telemetry.summarized import SummarizedWarnings

log = logging.getLogger("oxidicom.descriptors")

EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE})

_warnings = SummarizedWarnings(
    log,
    "out of file descriptors (%s): %s",
    "out of file descriptors %d more time(s) (%s) since the last message",
)


def is_exhaustion(error: BaseException | None) -> bool:
    """Whether ``error`` is EMFILE or ENFILE."""
    return isinstance(error, OSError) and error.errno in EXHAUSTED


def report(error: BaseException | None, where: str) -> bool:
    """Count and log ``error`` if it is EMFILE/ENFILE (needs a running loop); say so."""
    if not is_exhaustion(error):
        return False
    assert isinstance(error, OSError)
    telemetry.descriptors_exhausted(where)
    _warnings.occurred(where, where, error.strerror or error)
    return True


def install_loop_handler(loop: asyncio.AbstractEventLoop) -> None:
    """Route the loop's EMFILE/ENFILE reports (a failed accept) through :func:`report`."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if report(context.get("exception"), "accept"):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def flush() -> None:
    """Log what was counted and not yet said (at shutdown)."""
    _warnings.flush()
