"""One association storing thousands of single-instance series, as an archive migration
does: tiny instances made by rewriting the UIDs of one template (pydicom once, not per
instance), sent by a raw peer. Shared by tests/integration/test_many_series.py and
benches/end_of_association.py.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from tests.dicom_factory import mr_instance, write_part10
from tests.integration.raw_peer import EXPLICIT_LE, MR_STORAGE, RawPeer, associate_rq, dataset_of

SERIES_STEM = "1.2.826.0.1.3680043.8.498.77."
_SOP_STEM = "1.2.826.0.1.3680043.8.498.78."
#: UID components must not start with 0: instance n carries 10000000 + n.
_BASE = 10_000_000


def series_uid(number: int) -> str:
    """The SeriesInstanceUID of instance ``number``."""
    return f"{SERIES_STEM}{_BASE + number}"


def _template() -> bytes:
    ds = mr_instance(
        rows=4, columns=4, series_uid=series_uid(0), SOPInstanceUID=f"{_SOP_STEM}{_BASE}"
    )
    buffer = io.BytesIO()
    write_part10(ds, buffer)  # type: ignore[arg-type]
    return dataset_of(buffer.getvalue())


def single_instance_series(count: int) -> Iterator[tuple[str, bytes]]:
    """(SOPInstanceUID, data set) of instances 1..count (< 90000000), each its own series."""
    template = _template()
    series, sop = series_uid(0).encode(), f"{_SOP_STEM}{_BASE}".encode()
    for number in range(1, count + 1):
        uid = f"{_SOP_STEM}{_BASE + number}"
        data = template.replace(series, series_uid(number).encode())
        yield uid, data.replace(sop, uid.encode())


def open_migration(port: int, calling: str = "MIGRATION") -> RawPeer:
    """An association that may store MR instances."""
    peer = RawPeer.connect(port)
    peer.associate(associate_rq(calling, contexts=((MR_STORAGE, EXPLICIT_LE),)))
    return peer


def store_all(peer: RawPeer, count: int) -> None:
    """Store ``count`` single-instance series, asserting each answer is success."""
    for number, (uid, dataset) in enumerate(single_instance_series(count), 1):
        status = peer.c_store(dataset, uid, message_id=number % 65535 + 1)
        assert status == 0, f"instance {number}: status {status:04X}"


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of process ``pid``, in KiB (Linux)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values
