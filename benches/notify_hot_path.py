"""Cost of the notifier on the per-instance hot path (``instance_stored``).

Run: ``.venv/bin/python benches/notify_hot_path.py``. The LONK publisher is not connected:
this measures only what reception pays (the rate-limit decision and, now and then,
queueing a message), which must stay far below the ~180 us a small instance costs.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from oxidicom.notify.journal import SeriesJournal
from oxidicom.notify.nats import LonkPublisher
from oxidicom.notify.notifier import ChrisNotifier
from oxidicom.notify.outbox import Outbox
from oxidicom.notify.progress import ProgressPolicy
from oxidicom.notify.registrations import Registrations
from oxidicom.storage.series import SeriesRecord

CALLS = 200_000


def measure(notifier: ChrisNotifier, series: int) -> float:
    records = [SeriesRecord(f"a-{series}", "PACS", f"1.2.3.{i}") for i in range(series)]
    start = time.perf_counter()
    for n in range(CALLS):
        record = records[n % series]
        record.count += 1
        notifier.instance_stored(record)
    return (time.perf_counter() - start) / CALLS * 1e6


async def main() -> None:
    with TemporaryDirectory() as tmp:
        journal = SeriesJournal(Path(tmp), Path(tmp) / "files")
        registrations = Registrations(Outbox(Path(tmp)), "main2", None, journal)
        without = ChrisNotifier(registrations, None, None)
        print(f"no NATS configured: {measure(without, 1):.3f} us per instance_stored")
        for interval in (0.5, 0.0):
            lonk = LonkPublisher("nats://127.0.0.1:1", required_limit=10**9, optional_limit=10**9)
            policy = ProgressPolicy("oxidicom", interval, lonk.offer, lonk.room_for_optional)
            notifier = ChrisNotifier(registrations, lonk, policy)
            for series in (1, 8):
                cost = measure(notifier, series)
                print(
                    f"NATS, interval {interval} s, {series} series: {cost:.3f} us per"
                    f" instance_stored ({len(lonk._queue)} messages queued)"
                )


if __name__ == "__main__":
    asyncio.run(main())
