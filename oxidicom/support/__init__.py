"""Small helpers that import nothing of oxidicom.

Durations, background futures, atomic writes, folders owned by a live process, process
ids, URL redaction.
"""

from oxidicom.support.atomic import write_all, write_then_rename
from oxidicom.support.background import Background
from oxidicom.support.durations import parse_duration
from oxidicom.support.owned import LOCK_NAME, Owner, judge_owner
from oxidicom.support.process import instance_id, short_id
from oxidicom.support.urls import redact

__all__ = [
    "LOCK_NAME",
    "Background",
    "Owner",
    "instance_id",
    "judge_owner",
    "parse_duration",
    "redact",
    "short_id",
    "write_all",
    "write_then_rename",
]
