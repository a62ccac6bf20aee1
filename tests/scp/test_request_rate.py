"""The per-address limit on association requests, alone (oxidicom/scp/request_rate.py)."""

from __future__ import annotations

import pytest

from oxidicom.scp.request_rate import HostRequestLimit, RequestRate, parse_request_rate


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("50/s", RequestRate(50, 1.0)),
        (" 600 / min ", RequestRate(600, 60.0)),
        ("20", RequestRate(20, 1.0)),
        ("0", None),
        ("0/min", None),
    ],
)
def test_rates_are_parsed(text: str, rate: RequestRate | None) -> None:
    assert parse_request_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "5/h", "-1/s", "1.5/s", "50/s/s", "2000000/s"])
def test_a_bad_rate_says_what_would_do(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected a (rate such as 50/s|count from 0)"):
        parse_request_rate(text)


def test_a_burst_of_n_then_n_per_second() -> None:
    limit = HostRequestLimit(RequestRate(5, 1.0))
    assert [limit.allow("10.0.0.2", 100.0) for _ in range(7)] == [True] * 5 + [False] * 2
    # A rejected request takes no token: 0.2 s later, exactly one more.
    assert limit.allow("10.0.0.2", 100.2)
    assert not limit.allow("10.0.0.2", 100.2)
    # Refilled, but never beyond the burst.
    assert [limit.allow("10.0.0.2", 200.0) for _ in range(6)] == [True] * 5 + [False]


def test_per_minute() -> None:
    limit = HostRequestLimit(RequestRate(3, 60.0))
    assert [limit.allow("h", 0.0) for _ in range(4)] == [True, True, True, False]
    assert not limit.allow("h", 19.0)
    assert limit.allow("h", 21.0)


def test_each_address_has_its_own_bucket() -> None:
    limit = HostRequestLimit(RequestRate(2, 1.0))
    assert [limit.allow("10.0.0.2", 0.0) for _ in range(3)] == [True, True, False]
    assert [limit.allow("10.0.0.3", 0.0) for _ in range(2)] == [True, True]
    assert not limit.allow("10.0.0.2", 0.0)


def test_memory_is_bounded_by_forgetting_the_least_recently_used() -> None:
    limit = HostRequestLimit(RequestRate(1, 60.0), max_hosts=100)
    for n in range(1000):
        assert limit.allow(f"10.0.{n // 256}.{n % 256}", 0.0)
    assert len(limit) == 100
    # The most recent ones are still counted; the first one was forgotten (forgiven).
    assert not limit.allow("10.0.3.231", 0.0)
    assert limit.allow("10.0.0.0", 0.0)
