"""Shared by the benches: the real receiver process, started as the tests start it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.integration.receiver import RunningReceiver, start_receiver  # noqa: E402

__all__ = ["ROOT", "RunningReceiver", "start_receiver"]
