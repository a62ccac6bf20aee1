"""Fixtures of the notify tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.redis_server import RedisServer, redis_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server, seasoned: no first-use grace (for tests not about restarts)."""
    with redis_server(tmp_path / "redis") as running:
        running.seasoned()
        yield running
