"""Small helpers that import nothing of oxidicom."""

from oxidicom.support.background import Background
from oxidicom.support.durations import parse_duration
from oxidicom.support.process import instance_id, short_id
from oxidicom.support.urls import redact

__all__ = ["Background", "instance_id", "parse_duration", "redact", "short_id"]
