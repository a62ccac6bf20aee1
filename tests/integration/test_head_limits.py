"""Heads that cost too much to walk are refused, and only them (issue 12, item 4).

The walk to (0020,0013) runs on the event loop; ``MAX_ELEMENTS`` and ``MAX_INFLATED``
bound it (tests/dicom/test_head.py counts the work). Against the real process: a head over a
limit, in one big fragment or deflated, gets 0xC000 with ``head over limit: ...``;
nothing is stored and no temporary file is left; the association goes on, and ordinary
instances on the same contexts, plain and deflated, are stored.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxidicom.dicom.head import MAX_ELEMENTS, MAX_INFLATED
from oxidicom.storage.writer import TMP_DIR_NAME
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.raw_peer import EXPLICIT_LE, MR_STORAGE, RawPeer, associate_rq, dataset_of
from tests.integration.receiver import RunningReceiver, start_receiver

pytestmark = pytest.mark.integration

DEFLATED_LE = "1.2.840.10008.1.2.1.99"
PLAIN_CONTEXT, DEFLATED_CONTEXT = 1, 3
CONTEXTS = ((MR_STORAGE, EXPLICIT_LE), (MR_STORAGE, DEFLATED_LE))
UNDEFINED = 0xFFFFFFFF


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[RunningReceiver]:
    running = start_receiver(tmp_path)
    yield running
    assert running.stop() == 0
    assert "Traceback" not in running.log()


def mr(number: int) -> tuple[str, bytes]:
    """(SOPInstanceUID, explicit VR little endian data set) of a small MR instance."""
    ds = mr_instance(instance_number=number)
    buffer = io.BytesIO()
    write_part10(ds, buffer)  # type: ignore[arg-type]
    return str(ds.SOPInstanceUID), dataset_of(buffer.getvalue())


def with_private(data: bytes, private: bytes) -> bytes:
    """``private`` (group 0009) inserted where it belongs among the top-level elements
    of an explicit VR little endian data set of defined lengths."""
    pos = 0
    while pos < len(data):
        group, _elem, vr = struct.unpack_from("<HH2s", data, pos)
        if group > 0x0009:
            break
        if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR", b"OF", b"OD", b"OL"):
            (length,) = struct.unpack_from("<L", data, pos + 8)
            pos += 12 + length
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            pos += 8 + length
    return data[:pos] + private + data[pos:]


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def empty_obs_in_an_item(n: int) -> bytes:
    """The slowest element to walk, ``n`` times, in a sequence and item of undefined length."""
    return (
        struct.pack("<HH2sHL", 0x0009, 0x1000, b"SQ", 0, UNDEFINED)
        + struct.pack("<HHL", 0xFFFE, 0xE000, UNDEFINED)
        + struct.pack("<HH2sHL", 0x0009, 0x1001, b"OB", 0, 0) * n
        + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
        + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    )


def zeros_value(size: int) -> bytes:
    return struct.pack("<HH2sHL", 0x0009, 0x1001, b"OB", 0, size) + bytes(size)


def temporary_files(receiver: RunningReceiver) -> list[Path]:
    tmp = receiver.files_root / TMP_DIR_NAME
    return [p for p in tmp.rglob("*") if p.is_file() and p.name != ".lock"]


def test_heads_over_the_limits_get_c000_and_the_association_goes_on(
    receiver: RunningReceiver,
) -> None:
    tiny = struct.pack("<HH2sH", 0x0009, 0x1001, b"LO", 0) * (4 * MAX_ELEMENTS)
    hostile = []
    uid, data = mr(1)  # tiny elements, all in one 1 MiB fragment
    hostile.append((uid, with_private(data, tiny), PLAIN_CONTEXT, 1 << 20, "elements"))
    uid, data = mr(2)  # a few kB that inflate to 4 x MAX_ELEMENTS elements
    data = deflate(with_private(data, empty_obs_in_an_item(4 * MAX_ELEMENTS)))
    hostile.append((uid, data, DEFLATED_CONTEXT, 16000, "elements"))
    uid, data = mr(3)  # a deflate bomb: 4 x MAX_INFLATED zeros in one private value
    data = deflate(with_private(data, zeros_value(4 * MAX_INFLATED)))
    hostile.append((uid, data, DEFLATED_CONTEXT, 16000, "MiB inflated"))
    plain_uid, plain = mr(4)
    deflated_uid, deflated = mr(5)
    with RawPeer.connect(receiver.port) as peer:
        peer.associate(associate_rq(contexts=CONTEXTS))
        for message_id, (uid, data, context, max_pdv, _what) in enumerate(hostile, 1):
            status = peer.c_store(
                data, uid, message_id=message_id, context_id=context, max_pdv=max_pdv
            )
            assert status == 0xC000, uid
            assert receiver.stored_files() == []
            assert temporary_files(receiver) == []
        assert peer.c_store(plain, plain_uid, message_id=4, context_id=PLAIN_CONTEXT) == 0
        status = peer.c_store(
            deflate(deflated), deflated_uid, message_id=5, context_id=DEFLATED_CONTEXT
        )
        assert status == 0
        peer.release()
    assert [p.name for p in receiver.stored_files()] == [
        f"0004-{plain_uid}.dcm",
        f"0005-{deflated_uid}.dcm",
    ]
    for uid, _data, _context, _max_pdv, what in hostile:
        receiver.wait_for_log(
            rf"C-STORE-RQ of {uid} refused: status C000 head over limit: more than "
            rf"\d+ {what} before \(0020,0013\)"
        )
