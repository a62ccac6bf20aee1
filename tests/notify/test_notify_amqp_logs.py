"""aiormq's own connection-failure records are demoted to DEBUG; its other records are not."""

from __future__ import annotations

import logging

import pytest

from oxidicom.notify.amqp import ConnectionNoiseToDebug


def record(msg: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiormq.connection", level, __file__, 1, msg, (), None)


@pytest.mark.parametrize(
    "msg",
    [
        "error when creating transport: %r",
        "Cancelling cause reader exited abnormally",
        'Unexpected connection close from remote "%s", '
        "Connection.Close(reply_code=%r, reply_text=%r)",
    ],
)
def test_connection_failures_become_debug(msg: str) -> None:
    logger = logging.getLogger("aiormq.connection")
    noisy = record(msg)
    saved = logger.level
    try:
        logger.setLevel(logging.INFO)
        assert ConnectionNoiseToDebug().filter(noisy) is False
        logger.setLevel(logging.DEBUG)
        assert ConnectionNoiseToDebug().filter(noisy) is True
    finally:
        logger.setLevel(saved)
    assert (noisy.levelno, noisy.levelname) == (logging.DEBUG, "DEBUG")


def test_other_records_are_left_alone() -> None:
    blocked = record("Connection %r was blocked by: %r", logging.WARNING)
    assert ConnectionNoiseToDebug().filter(blocked) is True
    assert (blocked.levelno, blocked.levelname) == (logging.WARNING, "WARNING")
