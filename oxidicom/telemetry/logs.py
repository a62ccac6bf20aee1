"""Structured logs: one event a line, JSON off a terminal, the association id on every line.

``OXIDICOM_LOG_FORMAT`` chooses the format: ``json`` (one JSON object a line, for a log
collector), ``text`` (readable on a terminal) or ``auto`` (the default: text when stderr
is a terminal, JSON otherwise). ``OXIDICOM_LOG_LEVEL`` sets the level.

Every line logged on behalf of an association carries its id, whichever module logs
it: the asyncio shell runs each connection's callbacks inside a context where
:data:`CURRENT_ASSOCIATION` is set (see :mod:`oxidicom.aio.context`), and futures,
tasks and timers created from there inherit it. :class:`AssociationFilter` copies it
onto the record, unless the call passed ``extra={"association": ...}`` itself.

A worker of a supervisor (``OXIDICOM_WORKERS``) names itself on every line (``"worker":
2`` in JSON, ``worker-2`` in text): its start and stop lines are the same words as its
siblings'.
``loop.run_in_executor`` does not carry the context into the thread: code that logs
there should run ``contextvars.copy_context().run`` (or use ``asyncio.to_thread``).
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Protocol, TextIO

import msgspec


class AssociationScope(Protocol):
    """What a log line needs to know of the association it belongs to."""

    id: str

    def trace_ids(self) -> tuple[str, str] | None:
        """(trace id, span id) in hex when the association is traced."""


#: The association on whose behalf the running code works (None outside associations).
CURRENT_ASSOCIATION: ContextVar[AssociationScope | None] = ContextVar(
    "oxidicom_association", default=None
)


class AssociationFilter(logging.Filter):
    """Put ``association`` (and the trace ids, when traced) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        scope = CURRENT_ASSOCIATION.get()
        if getattr(record, "association", None) is None:
            record.association = scope.id if scope is not None else None
        if scope is not None and scope.id == record.association:
            ids = scope.trace_ids()
            if ids is not None:
                record.trace_id, record.span_id = ids
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, worker, message, association, trace ids."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
        }
        if self.worker is not None:
            event["worker"] = self.worker
        event["message"] = record.getMessage()
        association = getattr(record, "association", None)
        if association is not None:
            event["association"] = association
        trace_id = getattr(record, "trace_id", None)
        if trace_id is not None:
            event["trace_id"] = trace_id
            event["span_id"] = getattr(record, "span_id", None)
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        return msgspec.json.encode(event).decode()


class TextFormatter(logging.Formatter):
    """``time [worker-N] LEVEL logger [association] message``, for people at a terminal."""

    def __init__(self, worker: int | None = None) -> None:
        who = "" if worker is None else f"worker-{worker} "
        super().__init__(f"%(asctime)s {who}%(levelname)s %(name)s [%(association)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "association", None) is None:
            record.association = "-"
        return super().format(record)


def _utc(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def resolve_format(log_format: str, stream: TextIO) -> str:
    """``auto`` becomes ``text`` on a terminal and ``json`` anywhere else."""
    if log_format != "auto":
        return log_format
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def configure(
    level: str,
    log_format: str = "auto",
    stream: TextIO | None = None,
    worker: int | None = None,
) -> str:
    """Send every log record (and Python warnings) to ``stream``; return the format used.

    ``worker``: the number a supervisor's worker goes by (from 1), on every line.
    """
    out = stream if stream is not None else sys.stderr
    chosen = resolve_format(log_format, out)
    handler = logging.StreamHandler(out)
    handler.addFilter(AssociationFilter())
    handler.setFormatter(JsonFormatter(worker) if chosen == "json" else TextFormatter(worker))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    return chosen
