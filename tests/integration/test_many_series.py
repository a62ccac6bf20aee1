"""Thousands of single-instance series in one association (an archive migration): every
series gets exactly one registration and one LONK done (CONTRACT sections 3-4), none is
dropped, and the receiver's memory does not grow with the number of series.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.many_series import (
    memory_kib,
    open_migration,
    series_uid,
    single_instance_series,
    store_all,
)
from tests.integration.receiver import start_receiver
from tests.integration.services import NATS_URL, lonk_collector, ndicom_by_series, outbox_entries

pytestmark = pytest.mark.integration

SERIES = 3000
#: Peak memory growth allowed for SERIES series: about 3.4 KiB a series. Measured
#: (benches/end_of_association.py, 3000 series with NATS): 2.6 MiB here; 21 MiB before the
#: end of an association was worked off in chunks with compact series records.
GROWTH_LIMIT_KIB = 10 * 1024


async def test_thousands_of_series_in_one_association_each_registered_and_done_once(
    tmp_path: Path,
) -> None:
    async with lonk_collector() as lonk:
        env = {
            "OXIDICOM_NATS_ADDRESS": NATS_URL,
            "OXIDICOM_ROOT_SUBJECT": lonk.root_subject,
            "OXIDICOM_LOG_LEVEL": "INFO",
        }
        receiver = await asyncio.to_thread(start_receiver, tmp_path, env)
        try:
            # A first association pays for what is made once (imports, caches, buffers).
            with open_migration(receiver.port, "WARMUP") as peer:
                [(uid, dataset)] = list(single_instance_series(1))
                assert await asyncio.to_thread(peer.c_store, dataset, uid) == 0
                peer.release()
            await lonk.wait_until(lambda: len(lonk.messages) >= 2)
            pids = receiver.serving_pids()
            before = {pid: memory_kib(pid)["VmRSS"] for pid in pids}

            def migrate() -> None:
                with open_migration(receiver.port) as peer:
                    store_all(peer, SERIES)
                    peer.release()

            await asyncio.to_thread(migrate)
            # Progress 1 and done per series; a chunk's registrations are in the outbox
            # before its LONK messages are handed over.
            await lonk.wait_until(lambda: len(lonk.messages) >= 2 + 2 * SERIES)
            growth = max(memory_kib(pid)["VmHWM"] - before[pid] for pid in pids)
        finally:
            assert await asyncio.to_thread(receiver.stop) == 0
        await lonk.settle()
        log = receiver.log()
        assert "Traceback" not in log
        assert "dropping LONK messages" not in log
        registered = ndicom_by_series([e["kwargs"] for e in outbox_entries(receiver.outbox_dir)])
        wanted = {("MIGRATION", series_uid(n)): [1] for n in range(1, SERIES + 1)}
        assert {k: v for k, v in registered.items() if k[0] == "MIGRATION"} == wanted
        messages: dict[str, list[bytes]] = {}
        for subject, data in lonk.messages:
            messages.setdefault(subject, []).append(data)
        for n in range(1, SERIES + 1):
            subject = lonk.subject("MIGRATION", series_uid(n))
            assert messages.pop(subject) == [b"\x01\x01\x00\x00\x00", b"\x00"], subject
        assert list(messages) == [lonk.subject("WARMUP", series_uid(1))]
        assert growth < GROWTH_LIMIT_KIB, f"{growth / 1024:.1f} MiB"
        # The journal holds nothing once every registration is in the outbox.
        assert list((receiver.outbox_dir / ".journal").rglob("*.json")) == []
