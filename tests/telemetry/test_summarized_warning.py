"""A warning repeated by a flood is logged once, then as counts (telemetry/summarized.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from oxidicom.telemetry.logs import CURRENT_ASSOCIATION
from oxidicom.telemetry.summarized import SummarizedWarning


class _Lines(logging.Handler):
    """Collects messages; sets ``summarized`` when a summary line arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.associations: list[object] = []
        self.summarized = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        scope = CURRENT_ASSOCIATION.get()
        self.associations.append(scope.id if scope is not None else None)
        if record.getMessage().startswith("closed"):
            self.summarized.set()


@pytest.fixture
def lines() -> _Lines:
    logger = logging.getLogger("tests.summarized")
    logger.propagate = False
    handler = _Lines()
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING)
    return handler


def _warning(interval: float) -> SummarizedWarning:
    return SummarizedWarning(
        logging.getLogger("tests.summarized"),
        "closing connection from %s",
        "closed %d more connection(s)",
        interval,
    )


class _Scope:
    id = "A-1"

    def trace_ids(self) -> None:
        return None


async def test_the_first_is_logged_at_once_the_rest_as_one_count(lines: _Lines) -> None:
    warning = _warning(0.2)
    token = CURRENT_ASSOCIATION.set(_Scope())  # counted inside some association's callback
    try:
        for port in range(1000):
            warning.occurred(f"127.0.0.1:{port}")
    finally:
        CURRENT_ASSOCIATION.reset(token)
    assert lines.messages == ["closing connection from 127.0.0.1:0"]
    await asyncio.wait_for(lines.summarized.wait(), 10)
    assert lines.messages == [
        "closing connection from 127.0.0.1:0",
        "closed 999 more connection(s)",
    ]
    # The summary belongs to no association.
    assert lines.associations[1] is None


async def test_a_lasting_flood_gives_one_count_per_interval_and_flush_gives_the_rest(
    lines: _Lines,
) -> None:
    warning = _warning(0.2)
    warning.occurred("first")
    for _ in range(5):
        warning.occurred("again")
    await asyncio.wait_for(lines.summarized.wait(), 10)
    lines.summarized.clear()
    warning.occurred("within the next interval")
    warning.occurred("within the next interval")
    assert lines.messages == ["closing connection from first", "closed 5 more connection(s)"]
    warning.flush()  # at shutdown: nothing counted is lost
    assert lines.messages[-1] == "closed 2 more connection(s)"
    warning.flush()
    assert len(lines.messages) == 3


async def test_after_a_quiet_interval_the_next_one_is_logged_in_full(lines: _Lines) -> None:
    warning = _warning(0.0)  # every occurrence comes after the quiet interval
    warning.occurred("one")
    warning.occurred("two")
    assert lines.messages == ["closing connection from one", "closing connection from two"]
