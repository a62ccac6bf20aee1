from __future__ import annotations

import pytest

from oxidicom.aio.protocol import AssociationProtocolPy
from tests.implementations import IMPLEMENTATIONS, compiled_module


@pytest.fixture(params=IMPLEMENTATIONS)
def shell(request: pytest.FixtureRequest) -> type[AssociationProtocolPy]:
    """The socket shell of either twin: the reference, or the compiled per-read path
    (``oxidicom/aio/_protocol_c.pyx``; skipped where it is not built, failed under CI)."""
    if request.param == "python":
        return AssociationProtocolPy
    compiled: type[AssociationProtocolPy] = compiled_module(
        "oxidicom.aio._protocol_c"
    ).AssociationProtocol
    return compiled
