"""Telling the outside world: LONK progress over NATS, registrations to CUBE's Celery.

:class:`Notifier` is what storage outcomes are reported to; :class:`ChrisNotifier`
implements it with the registration journal, the durable outbox, the AMQP publisher
and the LONK publisher.
"""

from oxidicom.notify.base import Notifier
from oxidicom.notify.notifier import ChrisNotifier, build_notifier

__all__ = ["ChrisNotifier", "Notifier", "build_notifier"]
