"""Per-host fairness, the rule alone (oxidicom/scp/fairness.py)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.scp.fairness import Holder, host_share_victim

KIB = 1024.0


def _holders(*spec: tuple[str, float | None]) -> list[Holder[int]]:
    return [Holder(i, host, rate) for i, (host, rate) in enumerate(spec)]


def test_a_host_holding_every_slot_gives_its_slowest_to_another_host() -> None:
    holders = _holders(("10.0.0.2", 20 * KIB), ("10.0.0.2", 9 * KIB), ("10.0.0.2", 50 * KIB))
    victim = host_share_victim(holders, "10.0.0.1")
    assert victim is not None
    assert victim.holder.item == 1
    assert (victim.host_holds, victim.newcomer_holds) == (3, 0)


def test_a_host_is_never_preempted_for_itself() -> None:
    holders = _holders(("10.0.0.2", 9 * KIB), ("10.0.0.2", 9 * KIB))
    assert host_share_victim(holders, "10.0.0.2") is None


def test_a_host_holding_a_single_slot_keeps_it() -> None:
    holders = _holders(("10.0.0.2", 9 * KIB), ("10.0.0.3", 9 * KIB), ("10.0.0.4", 0.0))
    assert host_share_victim(holders, "10.0.0.1") is None


def test_one_slot_more_is_not_enough_so_two_hosts_never_swap_back_and_forth() -> None:
    # 10.0.0.1 holds 1 and 10.0.0.2 holds 2: a swap would only reverse the imbalance.
    holders = _holders(("10.0.0.2", 9 * KIB), ("10.0.0.2", 9 * KIB), ("10.0.0.1", 9 * KIB))
    assert host_share_victim(holders, "10.0.0.1") is None
    # Two more is enough, and after the swap the other host cannot take it back.
    holders = _holders(*[("10.0.0.2", 9 * KIB)] * 3, ("10.0.0.1", 9 * KIB))
    victim = host_share_victim(holders, "10.0.0.1")
    assert victim is not None and victim.host_holds == 3
    after = [h for h in holders if h is not victim.holder] + [Holder(9, "10.0.0.1", None)]
    after = [Holder(h.item, h.host, 9 * KIB) for h in after]
    assert host_share_victim(after, "10.0.0.2") is None


def test_the_host_holding_most_loses_first_then_its_slowest() -> None:
    holders = _holders(
        ("10.0.0.3", 1 * KIB),  # slowest overall, but its host holds only 2
        ("10.0.0.3", 30 * KIB),
        ("10.0.0.2", 40 * KIB),
        ("10.0.0.2", 20 * KIB),
        ("10.0.0.2", 60 * KIB),
    )
    victim = host_share_victim(holders, "10.0.0.1")
    assert victim is not None and victim.holder.item == 3


def test_associations_waiting_for_our_storage_are_skipped() -> None:
    # Not preemptible (waiting for our storage, not established): the host's others go.
    holders = [
        Holder(0, "10.0.0.2", None, preemptible=False),
        Holder(1, "10.0.0.2", 30 * KIB),
        Holder(2, "10.0.0.2", 1 * KIB, preemptible=False),
    ]
    victim = host_share_victim(holders, "10.0.0.1")
    assert victim is not None and victim.holder.item == 1
    stuck = [Holder(i, "10.0.0.2", None, preemptible=False) for i in range(8)]
    assert host_share_victim(stuck, "10.0.0.1") is None


def _young(item: int, host: str, received: int, age: float) -> Holder[int]:
    return Holder(item, host, None, received, age)


def test_a_host_churning_young_associations_through_every_slot_gives_one_up() -> None:
    # Issue 24: every association released before the grace period is over, none has a
    # rate. The share rule needs none: the host holding every slot gives one up.
    holders = [_young(i, "10.0.0.2", 0, 0.2 * i) for i in range(8)]
    victim = host_share_victim(holders, "10.0.0.1")
    assert victim is not None
    assert (victim.host_holds, victim.newcomer_holds) == (8, 0)
    assert victim.holder.item == 7  # nothing received by any: the oldest


def test_young_associations_go_by_bytes_received_then_age() -> None:
    holders = [
        _young(0, "10.0.0.2", 4096, 1.9),
        _young(1, "10.0.0.2", 10, 0.1),
        _young(2, "10.0.0.2", 10, 0.5),
        _young(3, "10.0.0.2", 900_000, 1.0),
    ]
    victim = host_share_victim(holders, "10.0.0.1")
    assert victim is not None and victim.holder.item == 2


def test_an_association_past_the_grace_goes_before_young_ones() -> None:
    # Where the rule acted before young associations counted, it picks as it did.
    holders = [
        _young(0, "10.0.0.2", 0, 1.0),
        Holder(1, "10.0.0.2", 50 * KIB, 500 * KIB, 10.0),
        Holder(2, "10.0.0.2", 20 * KIB, 200 * KIB, 10.0),
    ]
    victim = host_share_victim(holders, "10.0.0.1")
    assert victim is not None and victim.holder.item == 2


def test_young_associations_of_a_host_holding_its_share_are_never_preempted() -> None:
    # A steady sender from another host keeps its slot: only the host holding most loses.
    holders = [
        Holder(0, "10.0.0.3", 900 * KIB, 9000 * KIB, 10.0),  # the steady sender
        _young(1, "10.0.0.2", 0, 0.1),
        _young(2, "10.0.0.2", 0, 0.3),
    ]
    victim = host_share_victim(holders, "10.0.0.1")
    assert victim is not None and victim.holder.host == "10.0.0.2"
    # One slot more than the newcomer's host is not enough, young or not.
    holders = [_young(0, "10.0.0.2", 0, 0.1), _young(1, "10.0.0.2", 0, 0.1)]
    assert host_share_victim(holders, "10.0.0.2") is None
    assert host_share_victim([*holders, _young(2, "10.0.0.1", 0, 0.1)], "10.0.0.1") is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from("abcd"), min_size=1, max_size=12),
    st.lists(st.sampled_from("abcde"), min_size=1, max_size=60),
)
def test_preemptions_of_young_associations_never_loop(
    hosts: list[str], newcomers: list[str]
) -> None:
    """Every preemption lowers the sum of squares of the hosts' counts, so no sequence of
    newcomers (each associating at once, younger than anyone) can go round in a loop."""
    holders = [_young(i, host, 0, 1.0) for i, host in enumerate(hosts)]
    for n, host in enumerate(newcomers, start=len(hosts)):
        before = sum(c * c for c in Counter(h.host for h in holders).values())
        victim = host_share_victim(holders, host)
        if victim is None:
            continue
        assert victim.holder.host != host
        assert victim.host_holds >= victim.newcomer_holds + 2
        holders = [h for h in holders if h is not victim.holder] + [_young(n, host, 0, 0.0)]
        after = sum(c * c for c in Counter(h.host for h in holders).values())
        assert after < before


def test_slots_held_in_the_other_workers_count_too() -> None:
    """Several workers: each sees its own holders, and what each host holds in the others
    (``elsewhere``); the rule is judged over the whole receiver."""
    holders = _holders(("10.0.0.2", 9 * KIB), ("10.0.0.2", 9 * KIB), ("10.0.0.1", 9 * KIB))
    assert host_share_victim(holders, "10.0.0.1") is None  # 2 against 1 here
    victim = host_share_victim(holders, "10.0.0.1", {"10.0.0.2": 2, "10.0.0.3": 5})
    assert victim is not None and victim.holder.host == "10.0.0.2"
    assert (victim.host_holds, victim.newcomer_holds) == (4, 1)
    # The newcomer's own slots elsewhere count against it.
    assert host_share_victim(holders, "10.0.0.1", {"10.0.0.2": 2, "10.0.0.1": 2}) is None
    # A host holding most elsewhere but nothing here cannot be preempted here.
    assert host_share_victim(holders, "10.0.0.1", {"10.0.0.3": 8}) is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 1)), min_size=1, max_size=12),
    st.lists(st.tuples(st.sampled_from("abcde"), st.integers(0, 1)), min_size=1, max_size=60),
)
def test_preemptions_judged_in_two_workers_never_loop(
    hosts: list[tuple[str, int]], newcomers: list[tuple[str, int]]
) -> None:
    """Each newcomer reaches one of two workers, which sees its own holders and the
    other's counts: every preemption still lowers the receiver's sum of squares."""
    holders = [(_young(i, host, 0, 1.0), worker) for i, (host, worker) in enumerate(hosts)]
    for n, (host, worker) in enumerate(newcomers, start=len(hosts)):
        before = sum(c * c for c in Counter(h.host for h, _ in holders).values())
        here = [h for h, w in holders if w == worker]
        elsewhere = Counter(h.host for h, w in holders if w != worker)
        victim = host_share_victim(here, host, elsewhere)
        if victim is None:
            continue
        assert victim.host_holds >= victim.newcomer_holds + 2
        holders = [(h, w) for h, w in holders if h is not victim.holder]
        holders.append((_young(n, host, 0, 0.0), worker))
        after = sum(c * c for c in Counter(h.host for h, _ in holders).values())
        assert after < before
