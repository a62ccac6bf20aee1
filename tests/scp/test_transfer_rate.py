"""The rate window that preemption judges associations by (oxidicom/scp/transfer_rate.py)."""

from __future__ import annotations

import pytest

from oxidicom.scp.transfer_rate import BUCKETS, GRACE, WINDOW, TransferMeter

KIB = 1024
MIN_RATE = 8 * KIB


def test_a_new_association_is_protected_for_the_grace_period() -> None:
    meter = TransferMeter(now=100.0)
    assert meter.shortfall(100.0 + GRACE - 0.01, MIN_RATE) is None  # nothing received, still
    assert meter.shortfall(100.0 + GRACE, MIN_RATE) == 0.0


def test_until_it_is_older_than_the_window_it_is_judged_on_its_whole_life() -> None:
    meter = TransferMeter(now=0.0)
    meter.add(20 * KIB, 0.1)
    # 3 s old: 20 KiB is 6.7 KiB/s, below 8 KiB/s.
    assert meter.recent(3.0) == (20 * KIB, 3.0)
    assert meter.shortfall(3.0, MIN_RATE) == pytest.approx(20 * KIB / 3.0)
    meter.add(5 * KIB, 3.0)
    assert meter.shortfall(3.0, MIN_RATE) is None  # 25 KiB in 3 s: above


def test_bytes_older_than_the_window_no_longer_count() -> None:
    meter = TransferMeter(now=0.0)
    meter.add(10 * 1024 * KIB, 0.5)  # 10 MiB, then silence
    assert meter.shortfall(WINDOW - 0.1, MIN_RATE) is None
    received, span = meter.recent(WINDOW + 2.0)
    assert received == 0
    # The judged span: between (BUCKETS - 1) / BUCKETS of the window and the window.
    assert WINDOW * (BUCKETS - 1) / BUCKETS <= span <= WINDOW
    assert meter.shortfall(WINDOW + 2.0, MIN_RATE) == 0.0


def test_a_steady_sender_above_the_rate_is_never_below_it() -> None:
    meter = TransferMeter(now=0.0)
    now = 0.0
    while now < 60.0:
        meter.add(MIN_RATE // 2 + 64, now)  # every half second: just above the minimum
        now += 0.5
        assert meter.shortfall(now, MIN_RATE) is None, now


def test_a_trickle_is_below_the_rate_at_any_age_past_the_grace() -> None:
    meter = TransferMeter(now=0.0)
    now = 0.0
    while now < 60.0:
        meter.add(8, now)  # a tiny PDU every half second
        now += 0.5
        if now >= GRACE:
            rate = meter.shortfall(now, MIN_RATE)
            assert rate is not None and rate < 100, now


def test_a_silence_longer_than_the_window_clears_every_bucket() -> None:
    meter = TransferMeter(now=0.0)
    for second in range(10):
        meter.add(100 * KIB, float(second))
    meter.add(1, 1000.0)  # one read after a long silence rolls past all buckets at once
    assert meter.recent(1000.0)[0] == 1


def test_restart_forgets_and_grants_the_grace_again() -> None:
    meter = TransferMeter(now=0.0)
    meter.add(10, 1.0)
    assert meter.shortfall(30.0, MIN_RATE) == 0.0
    meter.restart(30.0)
    assert meter.recent(30.5) == (0, 0.5)
    assert meter.shortfall(30.0 + GRACE / 2, MIN_RATE) is None
    assert meter.shortfall(30.0 + GRACE, MIN_RATE) == 0.0
