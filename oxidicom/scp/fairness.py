"""Per-host fairness: one address cannot keep every association slot to itself.

The rate rule (:mod:`oxidicom.scp.transfer_rate`) frees slots held by associations that
receive next to nothing. It cannot tell a slow but honest sender from a peer that sends
just enough bytes to pass it (a data set already refused and drained, a never-ending
pixel data element), and bytes are all it sees. What it can bound is how many slots one
address holds while another address is locked out: when every slot is taken and none is
below the rate, a newcomer from a host holding at least two slots fewer than another
host takes one association of that host (which one: below).

"At least two fewer" makes every such preemption shrink the gap between the two hosts,
so two hosts can never take a slot back and forth: after the swap the newcomer's host
holds at most as many as the other. A host alone (one PACS with every slot) and
newcomers from a host that already holds its share are never helped by this rule; they
wait for a free slot (A-ASSOCIATE-RJ, transient) as before. The rule is pure: the
server hands it what it knows of each slot holder.

The rule needs no measured rate, so it holds for associations younger than the rate
rule's grace period too: a host that releases every association before it is two
seconds old and reopens it at once (issue 24) would otherwise hold every slot forever.
The grace period exists so that a burst of new associations cannot preempt each other
in a loop; here "two fewer" already rules that out. Which of the host's associations
goes: one past the grace period if it has any, the slowest (the rule as it was before
young ones counted); else the young one that received fewest bytes since its
acceptance, of those the oldest (it had longest to send and did not). Either way the
work lost is at most the instance it was sending, which a standard sender sends again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Holder(Generic[_T]):
    """One association holding a slot, as the rule sees it."""

    item: _T
    #: The peer's address, without the port.
    host: str
    #: Bytes per second over the judged span; None while younger than the grace period.
    rate: float | None
    #: Bytes received over the judged span (for a young one: since its acceptance).
    received: int = 0
    #: Seconds since its acceptance (or since its measure started afresh).
    age: float = 0.0
    #: False when it may not be preempted at all: not established, or waiting for our
    #: own storage (then we are the slow one, not the peer).
    preemptible: bool = True


@dataclass(frozen=True, slots=True)
class Victim(Generic[_T]):
    """The association to preempt, and the counts that justify it (for the log)."""

    holder: Holder[_T]
    #: Slots its host holds, and slots the newcomer's host holds, before the swap.
    host_holds: int
    newcomer_holds: int


def host_share_victim(
    holders: Sequence[Holder[_T]],
    newcomer_host: str,
    elsewhere: Mapping[str, int] | None = None,
) -> Victim[_T] | None:
    """An association of the host holding the most slots, if that host holds at least two
    more than ``newcomer_host``; else None. Of that host's: the slowest past the grace
    period, else the young one that received least, else the oldest young one.

    ``elsewhere``: slots each host holds in the receiver's other processes (its other
    workers), counted with those of ``holders``, so that the rule is judged over the whole
    receiver; only ``holders`` can be preempted here.
    """
    counts = Counter(holder.host for holder in holders)
    if elsewhere:
        for host in {*counts, newcomer_host}:
            counts[host] += elsewhere.get(host, 0)
    newcomer_holds = counts.get(newcomer_host, 0)
    best: Holder[_T] | None = None
    best_key: tuple[int, int, float, float] = (0, 0, 0.0, 0.0)
    for holder in holders:
        holds = counts[holder.host]
        if not holder.preemptible or holds < newcomer_holds + 2:
            continue
        key = (-holds, *_victim_order(holder))  # the host with most slots first
        if best is None or key < best_key:
            best, best_key = holder, key
    if best is None:
        return None
    return Victim(best, counts[best.host], newcomer_holds)


def _victim_order(holder: Holder[_T]) -> tuple[int, float, float]:
    """Smaller goes first among one host's associations."""
    if holder.rate is not None:
        return (0, holder.rate, -holder.age)
    return (1, float(holder.received), -holder.age)
