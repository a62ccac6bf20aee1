"""One worker's part of the receiver's limits (oxidicom/scp/shares.py)."""

from __future__ import annotations

import pytest

from oxidicom.scp.shares import WHOLE, WorkerShare, workers_for


@pytest.mark.parametrize("count", [1, 2, 3, 7, 64])
@pytest.mark.parametrize("total", [0, 1, 2, 5, 8, 64, 100, 100_000])
def test_the_parts_add_up_to_the_whole_and_differ_by_one_at_most(count: int, total: int) -> None:
    parts = [WorkerShare(index, count).part(total) for index in range(count)]
    assert sum(parts) == total
    assert max(parts) - min(parts) <= 1
    assert parts == sorted(parts, reverse=True)  # the remainder goes to the first ones


def test_the_whole_is_one_part() -> None:
    assert WHOLE.part(8) == 8
    assert str(WorkerShare(1, 4)) == "worker 2 of 4"


@pytest.mark.parametrize(("index", "count"), [(2, 2), (-1, 2), (0, 0)])
def test_a_worker_that_does_not_exist(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        WorkerShare(index, count)


@pytest.mark.parametrize(
    ("wanted", "slots", "workers"),
    [(2, 8, 2), (16, 8, 2), (4, 1, 1), (1, 8, 1), (3, 3, 1), (16, 64, 16), (8, 31, 7)],
)
def test_at_most_one_worker_per_four_slots(wanted: int, slots: int, workers: int) -> None:
    assert workers_for(wanted, slots) == workers
