"""The connection's receive buffer: the kernel never writes where a live view can see.

Every region lent for a read (``get_buffer``) must be memory that no view handed out
earlier can see, or bytes already received (a data set waiting for its ``writev``)
would be overwritten by later reads; and slabs nobody views any more are reused rather
than allocated (and zeroed) again.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from oxidicom.aio import receive_buffer
from oxidicom.aio.context import ScopedProtocol
from oxidicom.aio.protocol import AssociationProtocolPy
from oxidicom.aio.receive_buffer import MIN_LENT, SLAB_SIZE, ReceiveBuffer
from oxidicom.app.settings import load_settings
from oxidicom.notify.notifier import build_notifier
from oxidicom.scp.services import ScpService
from oxidicom.storage.writer import Store
from oxidicom.ul.connection import Connection
from tests.integration.raw_peer import EXPLICIT_LE, MR_STORAGE, associate_rq


def _read(buffer: ReceiveBuffer, data: bytes) -> memoryview:
    """One read of ``data`` (at most what is lent), as a transport does it."""
    lent = buffer.lend()
    size = min(len(lent), len(data))
    lent[:size] = data[:size]
    del lent
    return buffer.filled(size)


def test_a_region_is_lent_whole_and_handed_back_as_a_view() -> None:
    buffer = ReceiveBuffer()
    lent = buffer.lend()
    assert len(lent) >= MIN_LENT and not lent.readonly
    del lent
    view = _read(buffer, b"hello")
    assert bytes(view) == b"hello"


def test_a_slab_nobody_views_is_lent_again_from_its_start() -> None:
    buffer = ReceiveBuffer()
    first = _read(buffer, b"x" * 1000)
    slab = id(first.obj)  # an id: a reference to the slab would count as a user of it
    del first
    lent = buffer.lend()
    assert id(lent.obj) == slab and len(lent) == SLAB_SIZE  # from byte 0 again


def test_a_viewed_region_is_never_lent_again() -> None:
    buffer = ReceiveBuffer()
    kept = _read(buffer, b"a" * 1000)
    lent = buffer.lend()
    # The same slab, past the kept bytes: writing all of it leaves them alone.
    lent[:] = b"b" * len(lent)
    assert bytes(kept) == b"a" * 1000


def test_a_full_slab_still_viewed_is_left_for_a_fresh_one_then_reused() -> None:
    buffer = ReceiveBuffer()
    kept = _read(buffer, b"k" * (SLAB_SIZE - MIN_LENT + 1))
    old = id(kept.obj)
    lent = buffer.lend()
    assert id(lent.obj) != old  # the tail left is shorter than MIN_LENT
    lent[:] = b"z" * len(lent)
    assert bytes(kept) == b"k" * (SLAB_SIZE - MIN_LENT + 1)
    del lent, kept
    receive_buffer._free.clear()
    # Fill the second slab until it must be left too: the first, unviewed now, is reused.
    pinned = _read(buffer, b"p" * (SLAB_SIZE - MIN_LENT + 1))
    assert id(buffer.lend().obj) == old
    del pinned


@pytest.mark.parametrize("seed", range(20))
def test_random_reads_and_releases_never_overwrite_live_bytes(seed: int) -> None:
    """Reads of random sizes, views kept and dropped at random (as PDV data waiting for
    storage is): every live view keeps the bytes it was handed."""
    rng = random.Random(seed)
    buffer = ReceiveBuffer()
    live: list[tuple[memoryview, bytes]] = []
    for step in range(300):
        data = bytes([step % 251]) * rng.choice((1, 7, 1000, 70_000, 300_000, SLAB_SIZE))
        view = _read(buffer, data)
        expected = data[: len(view)]
        # Keep some views whole, some as slices (as the Upper Layer splits them).
        if rng.random() < 0.5:
            cut = rng.randrange(len(view) + 1)
            live.append((view[cut:], expected[cut:]))
        del view
        while live and rng.random() < 0.4:
            live.pop(rng.randrange(len(live)))
        for kept, original in live:
            assert bytes(kept) == original
    buffer.release()
    for kept, original in live:
        assert bytes(kept) == original


def test_the_connection_protocol_is_a_buffered_protocol() -> None:
    """asyncio and uvloop read into our buffer only for a BufferedProtocol."""
    assert issubclass(ScopedProtocol, asyncio.BufferedProtocol)


@pytest.mark.parametrize("loop_kind", ["uvloop", "asyncio"])
def test_a_real_transport_reads_into_our_slabs(
    loop_kind: str, tmp_path: Path, shell: type[AssociationProtocolPy]
) -> None:
    """Over a socket, the bytes the Upper Layer gets are views of our slabs (a bytearray),
    not ``bytes`` the transport made: the data set is not copied in user space."""
    uvloop = pytest.importorskip("uvloop") if loop_kind == "uvloop" else None
    seen: list[type] = []
    receive_data = Connection.receive_data

    def spy(self: Connection, data: bytes | memoryview, now: float) -> None:
        seen.append(type(memoryview(data).obj))
        receive_data(self, data, now)

    async def exchange() -> None:
        settings = load_settings(
            {
                "OXIDICOM_FILES_ROOT": str(tmp_path / "files"),
                "OXIDICOM_OUTBOX_DIR": str(tmp_path / "outbox"),
            }
        )
        store = Store(settings.files_root, fsync=False)
        store.prepare()
        notifier = build_notifier(settings)
        await notifier.start()
        loop = asyncio.get_running_loop()
        service = ScpService(settings, store, notifier)
        server = await loop.create_server(lambda: ScopedProtocol(shell(service)), "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
            header = await reader.readexactly(6)
            assert header[0] == 0x02  # A-ASSOCIATE-AC
            writer.close()
            await writer.wait_closed()
        finally:
            server.close()
            await server.wait_closed()
            await notifier.stop()
            store.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Connection, "receive_data", spy)
        if uvloop is not None:
            uvloop.run(exchange())
        else:
            asyncio.run(exchange())
    assert seen and set(seen) == {bytearray}
