"""What the associations of one process share: :class:`ScpService`.

An :class:`~oxidicom.scp.association.Association` is handed a
:class:`~oxidicom.scp.interfaces.Services`: the settings, the two policies, the store,
the notifier, association ids and slots. :class:`ScpService` is that object in a
receiver process. To give a slot to a newcomer it may preempt a running association (too
slow, or of a host holding more than its share), and it closes the oldest connections
holding no association beyond a cap: for both it sees each connection as a
:class:`~oxidicom.scp.interfaces.Link` or a
:class:`~oxidicom.scp.interfaces.PendingConnection`, which the asyncio shell
(:mod:`oxidicom.aio.protocol`, :mod:`oxidicom.aio.tls`) implements, and each
association as a :class:`~oxidicom.scp.interfaces.SlotHolder`. Nothing here imports the
shell, nor the association; both import this.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from oxidicom import telemetry
from oxidicom.scp.acceptance import AcceptancePolicy
from oxidicom.scp.access import AccessPolicy
from oxidicom.scp.fairness import Holder, host_share_victim
from oxidicom.scp.interfaces import Link, PendingConnection, SlotHolder
from oxidicom.scp.request_rate import HostRequestLimit
from oxidicom.scp.shares import WHOLE, WorkerShare
from oxidicom.scp.transfer_rate import WINDOW
from oxidicom.support.process import short_id
from oxidicom.telemetry.summarized import SummarizedWarning, SummarizedWarnings

if TYPE_CHECKING:
    # Types only: the settings module imports the access policy from this package.
    from oxidicom.app.settings import Settings
    from oxidicom.notify.base import Notifier
    from oxidicom.storage.writer import Store

# The name of the logger before this class left the shell: operators' log filters use it.
log = logging.getLogger("oxidicom.server")

#: Peers marked over the rate by the supervisor, kept at most (see ScpService.over_rate).
_OVER_RATE_KEPT = 4096


class ScpService:
    """Settings, policy, storage and counters shared by the associations of one process.

    Implements :class:`Services` for them; the shell registers each connection with it
    (:meth:`connection_opened`, :meth:`connection_closed`) as a :class:`Link`, and each
    TLS connection in its handshake as a :class:`PendingConnection`.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        notifier: Notifier,
        share: WorkerShare = WHOLE,
    ) -> None:
        self.settings = settings
        #: This process's part of the limits (:mod:`oxidicom.scp.shares`).
        self.share = share
        self.store = store
        self.notifier = notifier
        self.policy = AcceptancePolicy.from_settings(settings)
        self.access = AccessPolicy(
            ae_title=settings.scp_aet,
            check_called_ae_title=settings.scp_check_called_aet,
            allowed_peers=settings.scp_allowed_peers,
            client_ae_titles=settings.tls_client_aets,
        )
        self.max_associations = share.part(settings.max_associations)
        self.slot_limit = (
            "limit"
            if share.count == 1
            else f"{share}'s part of OXIDICOM_LISTENER_THREADS={settings.max_associations}"
        )
        #: Flow control: pause reading above ``high_water`` unconsumed bytes, resume below
        #: ``low_water``. Four maximum-length PDUs keep the pipe full without hoarding.
        self.high_water = max(4 * settings.scp_max_pdu_length, 256 * 1024)
        self.low_water = self.high_water // 4
        self.active_associations = 0
        self.accepting = True
        self.connections: set[Link] = set()
        #: Connections that have reached it so far, each once (a TLS one at the start of
        #: its handshake): a worker counts those handed to it that have not yet.
        self.arrivals = 0
        self._tls = settings.tls_certificate is not None
        #: Open connections holding no association slot, oldest first (see connection_opened).
        self.max_pending = max(1, share.part(settings.max_pending_connections))
        self._pending: dict[PendingConnection, None] = {}
        #: TLS connections whose handshake is not over (they are pending too).
        self.handshakes: set[PendingConnection] = set()
        self._protocols: dict[SlotHolder, Link] = {}
        #: The associations that hold a slot (acquire_slot to release_slot).
        self._holders: dict[SlotHolder, None] = {}
        #: Bytes per second below which a running association may be preempted; 0: never.
        self.min_transfer_rate = settings.min_transfer_rate
        #: A-ASSOCIATE-RQs per address (OXIDICOM_MAX_ASSOCIATION_RATE); None: no limit.
        #: One of several workers counts none: its supervisor counts every connection to
        #: the receiver, and names those over the rate (:meth:`over_rate`).
        rate = settings.max_association_rate
        self.request_limit = (
            HostRequestLimit(rate) if rate is not None and share.count == 1 else None
        )
        self.rate_limit = f"more than {rate} (OXIDICOM_MAX_ASSOCIATION_RATE)"
        #: Peers (``host:port``) whose connection the supervisor found over the rate.
        self._over_rate: dict[str, None] = {}
        #: Slots each host holds in the receiver's other workers, as the supervisor last
        #: told (:mod:`oxidicom.aio.handoff`): the host-share rule counts them too.
        self.holds_elsewhere: Mapping[str, int] = {}
        #: Called whenever a connection opens or closes, or a slot is taken or freed (a
        #: worker reports its load to the supervisor with it); None: nobody asks.
        self.on_connections_changed: Callable[[], None] | None = None
        whole_pending = settings.max_pending_connections
        here = "" if share.count == 1 else f", {self.max_pending} in {share}"
        self._evictions = SummarizedWarning(
            log,
            f"closing connection from %s: more than {whole_pending} connections without an"
            f" association{here}",
            f"closed %d more connection(s) without an association (more than {whole_pending}"
            f" open{here}) since the last message",
        )
        #: A-ASSOCIATE-RJ, logged once per reason and peer host during a flood.
        self.rejections = SummarizedWarnings(
            logging.getLogger("oxidicom.association"),
            "association from %s rejected: %s",
            "rejected %d more association(s) (%s) since the last message",
        )
        self._ids = itertools.count(1)
        # Random, not the pid: pids repeat across containers sharing storage and logs.
        self._id_prefix = short_id()

    def next_association_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def request_allowed(self, peer: str) -> bool:
        if peer in self._over_rate:
            del self._over_rate[peer]
            return False
        limit = self.request_limit
        return limit is None or limit.allow(_host(peer), asyncio.get_running_loop().time())

    def over_rate(self, peer: str) -> None:
        """The supervisor counted the connection from ``peer`` (``host:port``) over its
        address's rate: its A-ASSOCIATE-RQ is rejected as one over the rate here would be."""
        over = self._over_rate
        over[peer] = None
        # Bounded: a connection that closes unread leaves its mark until then.
        while len(over) > _OVER_RATE_KEPT:
            del over[next(iter(over))]

    def acquire_slot(self, association: SlotHolder | None = None, *, preempt: bool = False) -> bool:
        """Count one more association, unless we are stopping or every slot is taken.

        When every slot is taken and ``preempt`` is true (the request will be
        accepted), the running association that receives least is preempted for the
        newcomer if it receives less than ``min_transfer_rate`` (see
        :mod:`oxidicom.scp.transfer_rate`); only when none does is the newcomer refused.
        """
        if not self.accepting:
            return False
        protocol = self._protocols.get(association) if association is not None else None
        if self.active_associations >= self.max_associations:
            if protocol is not None:
                # Out of the pending set, so that the preempted association, which
                # joins it, cannot evict the very connection it makes room for.
                self._pending.pop(protocol, None)
            if not preempt or not self._preempt_for(association):
                if protocol is not None:
                    self._add_pending(protocol)
                return False
            if self.active_associations >= self.max_associations:
                return False  # the preempted association did not let go (cannot happen)
        self.active_associations += 1
        if association is not None:
            self._holders[association] = None
        if protocol is not None:
            self._pending.pop(protocol, None)
            protocol.meter.restart(protocol.loop.time())  # judged from its acceptance on
        self._connections_changed()
        return True

    def release_slot(self, association: SlotHolder | None = None) -> None:
        self.active_associations -= 1
        if association is not None:
            self._holders.pop(association, None)
            if association in self._protocols:
                self._add_pending(self._protocols[association])
        self._connections_changed()

    def holds_by_host(self) -> dict[str, int]:
        """Slots held here, per peer address."""
        return dict(Counter(_host(holder.peer) for holder in self._holders))

    def preemptible_now(self) -> int:
        """Running associations the rate rule would preempt for a newcomer now."""
        min_rate = self.min_transfer_rate
        if not min_rate:
            return 0
        now = asyncio.get_running_loop().time()
        slow = 0
        for holder in self._holders:
            protocol = self._protocols.get(holder)
            if protocol is not None and protocol.preemptible:
                rate = protocol.meter.rate(now)
                slow += rate is not None and rate < min_rate
        return slow

    def _preempt_for(self, newcomer: SlotHolder | None) -> bool:
        """Abort one running association for ``newcomer``, if a rule allows it.

        First the rate rule: the least productive association below the minimum rate.
        Then, when none is, per-host fairness (:mod:`oxidicom.scp.fairness`): an
        association of a host holding at least two slots more than the newcomer's, young
        or not (its slowest, else the young one that received least).
        """
        min_rate = self.min_transfer_rate
        if not min_rate:
            return False
        now = asyncio.get_running_loop().time()
        who = f"{newcomer.calling_ae_title}@{newcomer.peer}" if newcomer is not None else "another"
        holders: list[Holder[Link]] = []
        victim: Link | None = None
        victim_rate = 0.0
        for holder in self._holders:
            protocol = self._protocols.get(holder)
            if protocol is None:
                continue
            meter, preemptible = protocol.meter, protocol.preemptible
            rate = meter.rate(now) if preemptible else None
            received, _ = meter.recent(now)
            holders.append(
                Holder(
                    protocol, _host(holder.peer), rate, received, now - meter.started, preemptible
                )
            )
            if rate is not None and rate < min_rate and (victim is None or rate < victim_rate):
                victim, victim_rate = protocol, rate
        if victim is not None:
            received, span = victim.meter.recent(now)
            telemetry.association_preempted(telemetry.PREEMPTED_BELOW_MIN_RATE)
            victim.preempt(
                f"{received} bytes received in the last {span:.1f} s ({victim_rate:.0f} B/s,"
                f" below OXIDICOM_MIN_TRANSFER_RATE={min_rate} B/s over {WINDOW:g} s),"
                f" its slot goes to {who}"
            )
            return True
        if newcomer is None:
            return False
        share = host_share_victim(holders, _host(newcomer.peer), self.holds_elsewhere)
        if share is None:
            return False
        protocol = share.holder.item
        received, span = protocol.meter.recent(now)
        which = "the slowest" if share.holder.rate is not None else "a young one"
        telemetry.association_preempted(telemetry.PREEMPTED_HOST_SHARE)
        # Judged over the whole receiver, its other workers' slots included.
        slots = f"{self.settings.max_associations} slots"
        protocol.preempt(
            f"{share.holder.host} holds {share.host_holds} of the {slots}"
            f" and {_host(newcomer.peer)} {share.newcomer_holds}; this is {which} of"
            f" {share.holder.host}'s ({received} bytes in the last {span:.1f} s), its slot goes"
            f" to {who}"
        )
        return True

    def connection_opened(self, protocol: Link) -> None:
        if not self._tls:  # else it arrived at its handshake_started
            self.arrivals += 1
        self.connections.add(protocol)
        if protocol.association is not None:
            self._protocols[protocol.association] = protocol
        self._add_pending(protocol)
        self._connections_changed()

    def connection_closed(self, protocol: Link) -> None:
        self.connections.discard(protocol)
        self._pending.pop(protocol, None)
        self._over_rate.pop(protocol.peer, None)
        if protocol.association is not None:
            self._protocols.pop(protocol.association, None)
        self._connections_changed()

    def handshake_started(self, handshake: PendingConnection) -> None:
        """A TLS connection was accepted: pending from now on, like a plain one."""
        self.arrivals += 1
        self.handshakes.add(handshake)
        self._add_pending(handshake)
        self._connections_changed()

    def handshake_ended(self, handshake: PendingConnection) -> None:
        """Its handshake is over: failed, or the association protocol takes it over."""
        self.handshakes.discard(handshake)
        self._pending.pop(handshake, None)
        self._connections_changed()

    @property
    def open_connections(self) -> int:
        """Connections open now: with an association or pending, TLS handshakes too."""
        return len(self.connections) + len(self.handshakes)

    def _connections_changed(self) -> None:
        # At once, not batched per loop iteration: the supervisor should know of a
        # closed connection before the next one arrives (a refused peer that tries again
        # at once must not find the worker still counted full).
        if self.on_connections_changed is not None:
            self.on_connections_changed()

    @property
    def pending_connections(self) -> int:
        return len(self._pending)

    def _add_pending(self, protocol: PendingConnection) -> None:
        """Track a connection without an association; close the oldest beyond the cap.

        Connections that hold no slot (in the TLS handshake, waiting for the
        A-ASSOCIATE-RQ, or for the peer to close after a reject, release or abort) cost
        a file descriptor each and do no work: a flood of them must not exhaust
        descriptors. Closing the *oldest* keeps
        the door open: a real peer sends its request within milliseconds of connecting,
        so only connections that linger are ever closed.
        """
        if not protocol.is_open:
            return
        self._pending[protocol] = None
        while len(self._pending) > self.max_pending:
            oldest = next(iter(self._pending))
            del self._pending[oldest]
            telemetry.connection_evicted()
            self._evictions.occurred(oldest.peer)
            oldest.evict()

    def flush_logs(self) -> None:
        """Log what summarized warnings have counted so far (at shutdown)."""
        self._evictions.flush()
        self.rejections.flush()


def _host(peer: str) -> str:
    """The address of ``host:port`` (IPv6 addresses have colons of their own)."""
    return peer.rpartition(":")[0]
