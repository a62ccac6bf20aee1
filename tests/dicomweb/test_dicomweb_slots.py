"""STOW-RS slots: the rate rule and per-host fairness of the DIMSE listener (pure logic)."""

from __future__ import annotations

from oxidicom.dicomweb.slots import RunningRequest, StowSlots
from oxidicom.scp.transfer_rate import WINDOW

MIN_RATE = 8 * 1024


def request(peer: str, at: float = 0.0) -> RunningRequest:
    return RunningRequest(peer, idle_timeout=60, now=at)


def feed(running: RunningRequest, rate: float, until: float) -> None:
    """``rate`` bytes per second from its start until ``until``, one add a second."""
    t = running.meter.started
    while t < until:
        t += 1
        running.meter.add(int(rate), t)


def test_the_slowest_below_the_minimum_rate_gives_way_and_stops_reading() -> None:
    slots = StowSlots(2, MIN_RATE)
    fast, slow = request("10.0.0.1:1"), request("10.0.0.2:1")
    assert slots.acquire(fast, 0) and slots.acquire(slow, 0)
    feed(fast, 10 * MIN_RATE, WINDOW)
    feed(slow, 2, WINDOW)  # a body trickling at 2 B/s
    newcomer = request("10.0.0.3:1", WINDOW)
    assert slots.acquire(newcomer, WINDOW)
    assert (
        slow.reads.stopped is not None and "below OXIDICOM_MIN_TRANSFER_RATE" in slow.reads.stopped
    )
    assert fast.reads.stopped is None
    assert slots.active == 2


def test_nobody_gives_way_within_the_grace_period_or_while_storage_is_slow() -> None:
    slots = StowSlots(1, MIN_RATE)
    held = request("10.0.0.1:1")
    assert slots.acquire(held, 0)
    assert not slots.acquire(request("10.0.0.2:1", 1.0), 1.0)  # younger than the grace
    held.storage_wait_began(1.0)
    assert not slots.acquire(request("10.0.0.2:2", WINDOW), WINDOW)  # waiting for us
    held.storage_wait_ended(WINDOW)  # a long wait: measured afresh, grace again
    assert not slots.acquire(request("10.0.0.2:3", WINDOW + 1), WINDOW + 1)
    assert held.reads.stopped is None


def test_without_a_minimum_rate_the_newcomer_is_refused() -> None:
    slots = StowSlots(1, 0)
    held = request("10.0.0.1:1")
    assert slots.acquire(held, 0)
    assert not slots.acquire(request("10.0.0.2:1", WINDOW), WINDOW)
    assert held.reads.stopped is None


def test_a_host_holding_every_slot_gives_one_to_another_host() -> None:
    slots = StowSlots(3, MIN_RATE)
    hogs = [request(f"10.0.0.1:{n}") for n in range(3)]
    for n, hog in enumerate(hogs):
        assert slots.acquire(hog, 0)
        feed(hog, (n + 2) * MIN_RATE, WINDOW)  # all above the minimum
    assert not slots.acquire(request("10.0.0.1:9", WINDOW), WINDOW)  # same host: no
    assert slots.acquire(request("10.0.0.2:1", WINDOW), WINDOW)
    assert hogs[0].reads.stopped is not None and "holds 3 of the 3" in hogs[0].reads.stopped
    assert [h.reads.stopped for h in hogs[1:]] == [None, None]


def test_a_released_slot_is_free_again() -> None:
    slots = StowSlots(1, 0)
    held = request("10.0.0.1:1")
    assert slots.acquire(held, 0)
    slots.release(held)
    assert slots.acquire(request("10.0.0.2:1"), 0)


def test_host_share_never_takes_a_request_waiting_for_our_storage() -> None:
    slots = StowSlots(3, MIN_RATE)
    hogs = [request(f"10.0.0.1:{n}") for n in range(3)]
    for hog in hogs:
        assert slots.acquire(hog, 0)
        feed(hog, 2 * MIN_RATE, WINDOW)
        hog.storage_wait_began(WINDOW)
    assert not slots.acquire(request("10.0.0.2:1", WINDOW), WINDOW)
    assert [h.reads.stopped for h in hogs] == [None, None, None]
