"""CPU per instance of the receive path, in process, without sockets or senders.

One association is fed, as a peer would send it, N C-STORE requests of an MR instance
of ``--rows`` x ``--rows`` pixels (64: 9 KiB, the flood's small set; 320: 205 KiB, the
size of the real set's), the command PDU and the data set's PDUs in one read, as dcmtk's
storescu sends them (data set PDUs of at most ``--pdu`` bytes, the length the receiver
advertises); the files land in a fresh folder of ``--dir``. Each read is copied into the
buffer the protocol lends (``get_buffer``), as the kernel does. Reports microseconds of CPU
per instance (process time), so the receive path can be profiled and compared with the
flood's "CPU ms/inst" of dcmtk without the senders' noise::

    python benches/hot_path.py --instances 5000
    python benches/hot_path.py --instances 1500 --rows 320
    python benches/hot_path.py --instances 5000 --profile | head -40

With ``--rows 320`` most of the time is the kernel's, writing the files into /dev/shm,
and it varies from run to run by up to three times: take the lowest of several runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/

from oxidicom.aio.context import ScopedProtocol
from oxidicom.aio.protocol import AssociationProtocol
from oxidicom.app.settings import load_settings
from oxidicom.dimse.commands import CommandField, encode_request
from oxidicom.notify.notifier import build_notifier
from oxidicom.scp.services import ScpService
from oxidicom.storage.writer import Store
from oxidicom.ul import pdu as ul
from oxidicom.ul.constants import DICOM_APPLICATION_CONTEXT
from tests.dicom_factory import mr_instance

MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_PDU = struct.Struct(">BxI")
_PDV = struct.Struct(">IBB")


class _Transport:
    """Enough of a transport for the protocol: counts what it is given."""

    def __init__(self) -> None:
        self.written = 0
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 4242) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _pdata(is_command: bool, data: bytes, last: bool = True) -> bytes:
    pdv = _PDV.pack(len(data) + 2, 1, (1 if is_command else 0) | (2 if last else 0)) + data
    return _PDU.pack(4, len(pdv)) + pdv


def _pdus(data: bytes, max_pdu: int) -> bytes:
    """A data set as a sender splits it: one PDV per PDU of at most ``max_pdu`` bytes."""
    step = max_pdu - 6  # the PDV's length and header
    pieces = [data[start : start + step] for start in range(0, len(data), step)] or [b""]
    return b"".join(
        _pdata(False, piece, last=number == len(pieces)) for number, piece in enumerate(pieces, 1)
    )


def _dataset_bytes(index: int, rows: int) -> tuple[str, bytes]:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    ds = mr_instance(instance_number=index + 1, rows=rows, columns=rows)
    buffer = DicomBytesIO()
    buffer.is_implicit_VR = False  # explicit VR little endian, as negotiated
    buffer.is_little_endian = True
    write_dataset(buffer, ds)
    return str(ds.SOPInstanceUID), buffer.getvalue()


def _requests(count: int, rows: int, max_pdu: int) -> list[bytes]:
    reads = []
    for index in range(count):
        uid, body = _dataset_bytes(index, rows)
        command = encode_request(
            CommandField.C_STORE_RQ,
            index + 1,
            affected_sop_class_uid=MR_STORAGE,
            affected_sop_instance_uid=uid,
            has_dataset=True,
            priority=0,
        )
        reads.append(_pdata(True, command) + _pdus(body, max_pdu))
    return reads


def _associate_rq() -> bytes:
    return ul.encode(
        ul.AssociateRQ(
            called_ae_title="ChRIS",
            calling_ae_title="BENCH",
            application_context=DICOM_APPLICATION_CONTEXT,
            presentation_contexts=(ul.PresentationContextRQ(1, MR_STORAGE, (EXPLICIT_LE,)),),
            user_information=ul.UserInformation(
                maximum_length=131072, implementation_class_uid="1.2.3.4"
            ),
        )
    )


def _receive(protocol: ScopedProtocol, data: bytes) -> None:
    """One read, as the transport does it: into the protocol's buffer (the copy is the
    kernel's in production, and counted here), or as bytes to a plain protocol."""
    if not isinstance(protocol, asyncio.BufferedProtocol):
        protocol.data_received(data)
        return
    view = memoryview(data)
    while view:
        buffer = protocol.get_buffer(len(view))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        del buffer
        protocol.buffer_updated(size)
        view = view[size:]


async def _run(count: int, rows: int, max_pdu: int, folder: Path, profile: bool) -> float:
    environ = {
        "OXIDICOM_FILES_ROOT": str(folder / "files"),
        "OXIDICOM_OUTBOX_DIR": str(folder / "outbox"),
        "OXIDICOM_FSYNC": "false",
    }
    settings = load_settings(environ)
    store = Store(settings.files_root, fsync=False)
    store.prepare()
    notifier = build_notifier(settings)
    await notifier.start()
    server = ScpService(settings, store, notifier)
    reads = _requests(count, rows, max_pdu)
    protocol = ScopedProtocol(AssociationProtocol(server))
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    _receive(protocol, _associate_rq())
    profiler = cProfile.Profile() if profile else None
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    for data in reads:
        _receive(protocol, data)
        await asyncio.sleep(0)  # let callbacks of the loop run, as between socket reads
    if profiler is not None:
        profiler.disable()
    spent = time.process_time() - started
    if profiler is not None:
        order = os.environ.get("HOT_PATH_SORT", "tottime")
        rows = int(os.environ.get("HOT_PATH_ROWS", "35"))
        pstats.Stats(profiler).sort_stats(order).print_stats(rows)
    _receive(protocol, ul.encode(ul.ReleaseRQ()))
    protocol.connection_lost(None)
    await notifier.stop()
    store.close()
    stored = sum(1 for _ in (folder / "files" / "SERVICES").rglob("*.dcm"))
    if stored != count:
        raise SystemExit(f"stored {stored} of {count} instances")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5000)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the loop")
    parser.add_argument("--rows", type=int, default=64, help="rows and columns of each image")
    parser.add_argument(
        "--pdu", type=int, default=131072, help="the longest data set PDU the sender makes"
    )
    parser.add_argument("--dir", default="/dev/shm", help="where the files go (a fresh folder)")
    args = parser.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        spent = runner(_run(args.instances, args.rows, args.pdu, Path(folder), args.profile))
    per = spent / args.instances * 1e6
    print(f"{args.instances} instances: {spent:.3f} s CPU, {per:.1f} µs per instance")


if __name__ == "__main__":
    sys.exit(main())
