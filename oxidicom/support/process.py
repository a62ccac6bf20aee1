"""Who this process is, for names that must not collide across replicas and workers.

Several receivers can share one FILES_ROOT (replicas of a container, or worker
processes of one container). Process ids repeat across containers (every one is
often pid 1), so anything that must be unique across them (temporary folder names,
association ids, the ``service.instance.id`` of telemetry) uses a random identity
instead. It is drawn again after a fork, so a forked worker never inherits its
parent's.
"""

from __future__ import annotations

import os
import uuid

_pid: int | None = None
_instance_id = ""


def instance_id() -> str:
    """A random UUID for this process (a new one in a forked child)."""
    global _pid, _instance_id
    pid = os.getpid()
    if pid != _pid:
        _pid, _instance_id = pid, str(uuid.uuid4())
    return _instance_id


def short_id() -> str:
    """The first 8 hex digits of :func:`instance_id`: enough to tell replicas apart."""
    return instance_id()[:8]
