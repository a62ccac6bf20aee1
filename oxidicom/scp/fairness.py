"""Per-host fairness: one address cannot keep every association slot to itself.

The rate rule (:mod:`oxidicom.scp.transfer_rate`) frees slots held by associations that
receive next to nothing. It cannot tell a slow but honest sender from a peer that sends
just enough bytes to pass it (a data set already refused and drained, a never-ending
pixel data element), and bytes are all it sees. What it can bound is how many slots one
address holds while another address is locked out: when every slot is taken and none is
below the rate, a newcomer from a host holding at least two slots fewer than another
host takes the slowest association of that host.

"At least two fewer" makes every such preemption shrink the gap between the two hosts,
so two hosts can never take a slot back and forth: after the swap the newcomer's host
holds at most as many as the other. A host alone (one PACS with every slot) and
newcomers from a host that already holds its share are never helped by this rule; they
wait for a free slot (A-ASSOCIATE-RJ, transient) as before. The rule is pure: the
server hands it what it knows of each slot holder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Holder(Generic[_T]):
    """One association holding a slot, as the rule sees it."""

    item: _T
    #: The peer's address, without the port.
    host: str
    #: Bytes per second over the judged span; None when it may not be preempted at all
    #: (younger than the grace period, or waiting for our storage).
    rate: float | None


@dataclass(frozen=True, slots=True)
class Victim(Generic[_T]):
    """The association to preempt, and the counts that justify it (for the log)."""

    holder: Holder[_T]
    #: Slots its host holds, and slots the newcomer's host holds, before the swap.
    host_holds: int
    newcomer_holds: int


def host_share_victim(holders: Sequence[Holder[_T]], newcomer_host: str) -> Victim[_T] | None:
    """The slowest preemptible association of the host holding the most slots, if that
    host holds at least two more than ``newcomer_host``; else None."""
    counts = Counter(holder.host for holder in holders)
    newcomer_holds = counts.get(newcomer_host, 0)
    best: Holder[_T] | None = None
    best_key = (0, 0.0)
    for holder in holders:
        holds = counts[holder.host]
        if holder.rate is None or holds < newcomer_holds + 2:
            continue
        key = (-holds, holder.rate)  # the host with most slots, then its slowest
        if best is None or key < best_key:
            best, best_key = holder, key
    if best is None:
        return None
    return Victim(best, counts[best.host], newcomer_holds)
