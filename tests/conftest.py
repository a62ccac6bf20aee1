"""Settings of the whole suite."""

from __future__ import annotations

import sys
from collections.abc import Generator

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis's deadline and its "generation is slow" health check are timings: on a machine
# busy with other work (CI, two cores shared with the receivers the integration tests
# start) they fail tests whose property holds. A test asserts behaviour, never a time.
settings.register_profile(
    "oxidicom",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("oxidicom")


#: Lines of each receiver's log shown under a failed test (the last ones).
LOG_TAIL = 80


def _started() -> list | None:  # type: ignore[type-arg]
    module = sys.modules.get("tests.integration.receiver")
    return None if module is None else module.STARTED


def pytest_runtest_setup(item: pytest.Item) -> None:
    started = _started()
    if started is not None:
        started.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """A failed test shows the end of the log of each receiver it started (the last
    three): in CI that is all there is to read."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    started = _started()
    if not report.failed or not started:
        return
    for number, receiver in enumerate(started[-3:], start=max(1, len(started) - 2)):
        lines = receiver.log().splitlines()
        tail = "\n".join(lines[-LOG_TAIL:])
        report.sections.append((f"receiver {number} log (last {LOG_TAIL} lines)", tail))
