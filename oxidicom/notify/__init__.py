"""Telling the outside world: LONK progress over NATS, registrations to CUBE's Celery.

:class:`Notifier` is what storage outcomes are reported to; :class:`ChrisNotifier`
implements it with the registration journal, the durable outbox, the AMQP publisher
and the LONK publisher.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oxidicom.notify.base import Notifier
    from oxidicom.notify.notifier import ChrisNotifier, build_notifier

# Imported on first use (PEP 562): a process that needs one of them does not pay for
# all (the supervisor of several workers imports settings, not the receive path).
_WHERE = {
    "Notifier": "oxidicom.notify.base",
    "ChrisNotifier": "oxidicom.notify.notifier",
    "build_notifier": "oxidicom.notify.notifier",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = ["ChrisNotifier", "Notifier", "build_notifier"]
