"""Every Upper Layer test runs on both Connection twins: the pure-Python reference, then
the compiled reader (:mod:`oxidicom.ul._connection_c`), as aiohttp runs its parser tests.

Module-scoped, so that the hypothesis tests here may use it (a function-scoped fixture
would run once for all of a test's examples); the compiled one is skipped where it is
not built, and fails under CI (:mod:`tests.implementations`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oxidicom.ul import connection
from tests.implementations import IMPLEMENTATIONS, compiled_module
from tests.ul import _helpers

COMPILED_CONNECTION = "oxidicom.ul._connection_c"


@pytest.fixture(scope="module", params=IMPLEMENTATIONS, autouse=True)
def connection_twin(request: pytest.FixtureRequest) -> Iterator[type[connection.ConnectionPy]]:
    """The Connection class the helpers and this module's tests construct."""
    if request.param == "python":
        cls = connection.ConnectionPy
    else:
        cls = compiled_module(COMPILED_CONNECTION).Connection
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_helpers, "Connection", cls)
        if hasattr(request.module, "Connection"):
            patch.setattr(request.module, "Connection", cls)
        yield cls
