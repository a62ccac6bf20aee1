"""Per-host fairness, the rule alone (oxidicom/scp/fairness.py)."""

from __future__ import annotations

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


def test_associations_that_may_not_be_preempted_are_skipped() -> None:
    # Young or waiting for our storage (rate None): the host's other ones may go.
    holders = _holders(("10.0.0.2", None), ("10.0.0.2", 30 * KIB), ("10.0.0.2", None))
    victim = host_share_victim(holders, "10.0.0.1")
    assert victim is not None and victim.holder.item == 1
    assert host_share_victim(_holders(("10.0.0.2", None), ("10.0.0.2", None)), "x") is None
