"""Telling the outside world: LONK progress over NATS, registrations to CUBE's Celery.

:class:`Notifier` is what storage outcomes are reported to; :class:`ChrisNotifier`
implements it with the registration journal, the durable outbox, the AMQP publisher
and the LONK publisher.
"""

from typing import TYPE_CHECKING

from oxidicom.support.lazy import lazy_exports

if TYPE_CHECKING:
    from oxidicom.notify.base import Notifier
    from oxidicom.notify.notifier import ChrisNotifier, build_notifier

# Imported on first use (oxidicom.support.lazy).
_WHERE = {
    "Notifier": "oxidicom.notify.base",
    "ChrisNotifier": "oxidicom.notify.notifier",
    "build_notifier": "oxidicom.notify.notifier",
}
__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = ["ChrisNotifier", "Notifier", "build_notifier"]
