from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxidicom.aio.protocol import AssociationProtocolPy
from oxidicom.app.settings import load_settings
from oxidicom.notify.notifier import build_notifier
from oxidicom.scp.services import ScpService
from oxidicom.storage.writer import Store
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


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ScpService]:
    """A receiver's services without a listening socket: storage in ``tmp_path`` (no
    fsync), the outbox, no broker."""
    settings = load_settings(
        {
            "OXIDICOM_FILES_ROOT": str(tmp_path / "files"),
            "OXIDICOM_OUTBOX_DIR": str(tmp_path / "outbox"),
            "OXIDICOM_FSYNC": "false",
        }
    )
    store = Store(settings.files_root, fsync=False)
    store.prepare()
    notifier = build_notifier(settings)
    await notifier.start()
    try:
        yield ScpService(settings, store, notifier)
    finally:
        await notifier.stop()
        store.close()
