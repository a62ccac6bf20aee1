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

from oxidicom.dicom.head import HeadFields
from oxidicom.notify.nats import LonkPublisher
from oxidicom.notify.notifier import ChrisNotifier
from oxidicom.notify.outbox import Outbox
from oxidicom.notify.progress import ProgressPolicy
from oxidicom.notify.registrations import Registrations
from oxidicom.series import SeriesRecord

CALLS = 200_000


def head(uid: str) -> HeadFields:
    return HeadFields(
        specific_character_set=(),
        sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
        sop_instance_uid="1.2.3",
        study_date="20240102",
        accession_number="A",
        modality="MR",
        study_description="S",
        series_description="D",
        patient_name="N",
        patient_id="P",
        patient_birth_date="19800101",
        patient_sex="F",
        patient_age="044Y",
        protocol_name="T1",
        study_instance_uid="1.2",
        series_instance_uid=uid,
        series_number="3",
        instance_number="1",
    )


def measure(notifier: ChrisNotifier, series: int) -> float:
    records = [
        SeriesRecord(f"a-{series}", "PACS", f"1.2.3.{i}", head(f"1.2.3.{i}"), "dir")
        for i in range(series)
    ]
    start = time.perf_counter()
    for n in range(CALLS):
        record = records[n % series]
        record.count += 1
        notifier.instance_stored(record)
    return (time.perf_counter() - start) / CALLS * 1e6


async def main() -> None:
    with TemporaryDirectory() as tmp:
        registrations = Registrations(Outbox(Path(tmp)), "main2", None)
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
