"""Work on the event loop in slices: other callbacks run between (oxidicom.support.slices)."""

from __future__ import annotations

import asyncio

from oxidicom.support.slices import UNITS, TimeSlices


async def test_a_long_run_of_checkpoints_lets_other_callbacks_run_between() -> None:
    ran = 0

    def other() -> None:
        nonlocal ran
        ran += 1
        loop.call_soon(other)  # another peer's work, always ready

    loop = asyncio.get_running_loop()
    loop.call_soon(other)
    slices = TimeSlices(slice_seconds=3600.0)  # by count alone: no clock in the test
    for _ in range(10 * UNITS):
        await slices.checkpoint()
    assert ran >= 10


async def test_a_used_up_slice_gives_the_loop_back_before_the_count() -> None:
    ran = asyncio.Event()
    asyncio.get_running_loop().call_soon(ran.set)
    slices = TimeSlices(slice_seconds=0.0)
    await slices.checkpoint()
    assert ran.is_set()
