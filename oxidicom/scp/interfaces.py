"""What an association needs of the process it runs in, and what the process sees of it.

The :class:`~oxidicom.scp.association.Association` is handed a :class:`Services`
(implemented by :class:`~oxidicom.scp.services.ScpService`), which sees it as a
:class:`SlotHolder`, and each connection of the asyncio shell as a :class:`Link` or a
:class:`PendingConnection`. Only these protocols are shared: neither side imports the
other, not even for its types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import TYPE_CHECKING, Protocol

from oxidicom.scp.acceptance import AcceptancePolicy
from oxidicom.scp.access import AccessPolicy
from oxidicom.scp.transfer_rate import TransferMeter
from oxidicom.telemetry.summarized import SummarizedWarnings

if TYPE_CHECKING:
    # Types only: the settings module imports the access policy from this package.
    from oxidicom.app.settings import Settings
    from oxidicom.notify.base import Notifier
    from oxidicom.storage.writer import Store


class SlotHolder(Hashable, Protocol):
    """An association, as slots and preemption see it."""

    #: ``host:port`` of the peer.
    peer: str
    #: Empty until its A-ASSOCIATE-RQ is read.
    calling_ae_title: str


class Services(Protocol):
    """What an association needs of the process it runs in."""

    settings: Settings
    store: Store
    notifier: Notifier
    policy: AcceptancePolicy
    access: AccessPolicy
    max_associations: int
    #: Where ``max_associations`` comes from, for the rejection's detail.
    slot_limit: str
    #: What a request over its address's rate went beyond, for the rejection's detail.
    rate_limit: str
    #: A-ASSOCIATE-RJ warnings, summarized during a flood.
    rejections: SummarizedWarnings

    def next_association_id(self) -> str:
        """A new id, unique across processes sharing storage and logs."""
        ...

    def request_allowed(self, peer: str) -> bool:
        """One more A-ASSOCIATE-RQ from ``peer`` (``host:port``): False when its address
        asks too often."""
        ...

    def acquire_slot(self, association: SlotHolder | None = None, *, preempt: bool = False) -> bool:
        """Count one more running association; False when none may run now."""
        ...

    def release_slot(self, association: SlotHolder | None = None) -> None:
        """The association that acquired a slot no longer runs."""
        ...


class PendingConnection(Protocol):
    """An open connection that holds no association slot (see ScpService._add_pending)."""

    @property
    def peer(self) -> str: ...

    @property
    def is_open(self) -> bool: ...

    def evict(self) -> None: ...


class Link(PendingConnection, Protocol):
    """One connection, as the shell keeps it: what preemption and the pending cap use."""

    association: SlotHolder | None
    meter: TransferMeter
    loop: asyncio.AbstractEventLoop
    #: Done once the connection is closed and its association has ended.
    closed: asyncio.Future[None]

    @property
    def preemptible(self) -> bool:
        """Whether it may be preempted at all (established, and not waiting for our storage)."""
        ...

    def preempt(self, reason: str) -> None:
        """A-ABORT now: its slot goes to another peer."""
        ...

    def abort(self) -> None:
        """A-ABORT now (the shutdown timeout is reached)."""
        ...
