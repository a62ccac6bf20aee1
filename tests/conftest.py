"""Settings of the whole suite."""

from __future__ import annotations

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
