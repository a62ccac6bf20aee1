"""STOW-RS request slots: the DIMSE listener's rules, so no slow body holds one for long.

At most ``OXIDICOM_LISTENER_THREADS`` requests store at once. When every slot is taken
and another request asks for one, as for an association
(:meth:`oxidicom.scp.services.ScpService.acquire_slot`):

1. the running request whose body arrives slowest gives way, if it received less than
   ``OXIDICOM_MIN_TRANSFER_RATE`` over the last 10 s (:mod:`oxidicom.scp.transfer_rate`:
   the same meter, window and grace period);
2. else, per-host fairness (:mod:`oxidicom.scp.fairness`): a request of the host holding
   the most slots (its slowest; young ones too, as for associations), if that host holds
   at least two more than the newcomer's host.

The request that gives way stops reading its body at once: what it stored is stored and
reported, and it is answered 408 (its connection closed). A request waiting for our own
storage is never judged (we are the slow one then), and a long wait restarts its meter.
With ``OXIDICOM_MIN_TRANSFER_RATE=0`` no request gives way: the newcomer gets 503.
"""

from __future__ import annotations

import logging

from oxidicom.dicomweb.multipart import BodyReads
from oxidicom.scp.fairness import Holder, host_share_victim
from oxidicom.scp.transfer_rate import GRACE, WINDOW, TransferMeter

log = logging.getLogger("oxidicom.dicomweb")


class RunningRequest:
    """A request that holds (or asks for) a slot: its peer, its body's reads, its rate."""

    __slots__ = ("_storage_since", "host", "meter", "peer", "reads")

    def __init__(self, peer: str, idle_timeout: float, now: float) -> None:
        self.peer = peer
        self.host = peer.rpartition(":")[0]
        self.meter = TransferMeter(now)
        self.reads = BodyReads(idle_timeout, self.meter)
        self._storage_since: float | None = None

    def storage_wait_began(self, now: float) -> None:
        self._storage_since = now

    def storage_wait_ended(self, now: float) -> None:
        since, self._storage_since = self._storage_since, None
        if since is not None and now - since >= GRACE:
            # A long wait on our storage is not the client's slowness: measure it afresh.
            self.meter.restart(now)

    @property
    def preemptible(self) -> bool:
        """False while waiting for our storage (we are the slow one), or stopped already."""
        return self._storage_since is None and self.reads.stopped is None

    def judged_rate(self, now: float) -> float | None:
        """Its rate (bytes/s) if it may give way to the rate rule, else None (also while
        younger than the grace period)."""
        if not self.preemptible:
            return None
        return self.meter.rate(now)


class StowSlots:
    """The slots of running STOW-RS requests."""

    def __init__(self, max_requests: int, min_rate: int) -> None:
        self.max_requests = max_requests
        self.min_rate = min_rate
        self._holders: dict[RunningRequest, None] = {}

    @property
    def active(self) -> int:
        return len(self._holders)

    def acquire(self, request: RunningRequest, now: float) -> bool:
        """Take a slot for ``request``, making one free if a rule allows; else False."""
        if len(self._holders) >= self.max_requests and not self._preempt_for(request, now):
            return False
        self._holders[request] = None
        request.meter.restart(now)  # judged from its acceptance on
        return True

    def release(self, request: RunningRequest) -> None:
        self._holders.pop(request, None)

    def _preempt_for(self, newcomer: RunningRequest, now: float) -> bool:
        min_rate = self.min_rate
        if not min_rate:
            return False
        holders: list[Holder[RunningRequest]] = []
        victim: RunningRequest | None = None
        victim_rate = 0.0
        for running in self._holders:
            rate = running.judged_rate(now)
            received, _ = running.meter.recent(now)
            age = now - running.meter.started
            holders.append(Holder(running, running.host, rate, received, age, running.preemptible))
            if rate is not None and rate < min_rate and (victim is None or rate < victim_rate):
                victim, victim_rate = running, rate
        if victim is not None:
            received, span = victim.meter.recent(now)
            reason = (
                f"{received} bytes received in the last {span:.1f} s ({victim_rate:.0f} B/s,"
                f" below OXIDICOM_MIN_TRANSFER_RATE={min_rate} B/s over {WINDOW:g} s),"
                f" its slot goes to {newcomer.peer}"
            )
        else:
            share = host_share_victim(holders, newcomer.host)
            if share is None:
                return False
            victim = share.holder.item
            received, span = victim.meter.recent(now)
            reason = (
                f"{share.holder.host} holds {share.host_holds} of the {self.max_requests}"
                f" slots and {newcomer.host} {share.newcomer_holds}; this is the slowest of"
                f" {share.holder.host}'s ({received} bytes in the last {span:.1f} s), its slot"
                f" goes to {newcomer.peer}"
            )
        log.warning("STOW-RS request from %s preempted: %s", victim.peer, reason)
        # The slot is the newcomer's now; the victim ends at its next read (at once: it
        # is judged only while reading), answered 408.
        del self._holders[victim]
        victim.reads.stop(f"too slow while another request waited: {reason}")
        return True
