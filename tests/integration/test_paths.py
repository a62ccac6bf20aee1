"""No calling AE title or tag value can write outside SERVICES/PACS/ (CONTRACT section 2)."""

from __future__ import annotations

import io
import os
import struct

import pytest
from pydicom.uid import ImplicitVRLittleEndian, MRImageStorage
from pynetdicom import AE

from tests.dicom_factory import mr_instance, with_transfer_syntax, write_part10
from tests.integration.pynetdicom_scu import scu_only
from tests.integration.raw_peer import (
    IMPLICIT_LE,
    MR_STORAGE,
    RawPeer,
    associate_rq,
    dataset_of,
)
from tests.integration.receiver import RunningReceiver

pytestmark = pytest.mark.integration

HOSTILE_AE_TITLES = ["..", ".", "../../x", "/etc/passwd", "a/../..", ".hidden"]
LONG = b"x" * 300

#: tag -> raw value bytes, written as they are (no toolkit would send most of them)
HOSTILE_VALUES: list[dict[int, bytes]] = [
    {0x00100020: b"..", 0x00100010: b"/etc/passwd", 0x00100030: b"."},
    {0x00100020: b"../../../../tmp/x", 0x00081030: b"..", 0x00080050: b"/"},
    {0x00100020: b"ab\x00/../cd", 0x0008103E: b"\x00..\x00", 0x00200011: b"../1"},
    {0x00100020: LONG, 0x00100010: LONG, 0x00081030: LONG},
    {0x00100020: b"P", 0x00200013: b"../../../7", 0x0008103E: LONG},
    {0x00100020: b"P", 0x00200011: b"9" * 300, 0x00200013: b"." * 200},
    {0x00100020: b"P", 0x00080018: b"../../../../etc/x", 0x00200011: b"/"},
]


def implicit_dataset(values: dict[int, bytes], number: int) -> tuple[str, bytes]:
    """An implicit VR little endian data set with the required attributes and ``values``."""
    uid = f"1.2.826.0.1.3680043.8.498.77.{number}"
    elements = {
        0x00080016: MR_STORAGE.encode(),
        0x00080018: uid.encode(),
        0x00080020: b"20240102",
        0x00100020: b"P",
        0x0020000D: b"1.2.826.0.1.3680043.8.498.1",
        0x0020000E: b"1.2.826.0.1.3680043.8.498.2",
        0x00200013: str(number).encode(),
        0x7FE00010: b"\x00" * 64,
    }
    elements.update(values)
    # The command names the instance the data set holds (else A900), hostile UID or not.
    uid = elements[0x00080018].decode("latin-1")
    out = bytearray()
    for tag in sorted(elements):
        raw = elements[tag]
        raw += b"\x00" if len(raw) % 2 else b""
        out += struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(raw)) + raw
    return uid, bytes(out)


def assert_contained(receiver: RunningReceiver, expected_files: int) -> None:
    root = receiver.files_root
    # The receiver's own locked temporary folder holds its lock file, nothing else.
    everything = sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".lock")
    files = receiver.stored_files()
    assert everything == files  # nothing outside SERVICES/PACS (nor left in the tmp dir)
    assert len(files) == expected_files
    pacs = receiver.pacs_root.resolve()
    for path in files:
        assert pacs in path.resolve().parents
        relative = path.relative_to(receiver.pacs_root)
        assert len(relative.parts) == 5, relative
        for part in relative.parts:
            assert part not in (".", ".."), relative
            assert "\x00" not in part
            assert len(os.fsencode(part)) <= 255, relative
    # Nothing was written where the values pointed.
    assert {p.name for p in root.parent.iterdir()} <= {"files", "outbox"}
    assert sorted(p.name for p in root.iterdir()) == [".oxidicom-tmp", "SERVICES"]


def test_hostile_ae_titles_stay_under_services_pacs(receiver: RunningReceiver) -> None:
    """pynetdicom sends these AE titles as they are; each becomes one safe folder."""
    for number, title in enumerate(HOSTILE_AE_TITLES, 1):
        ae = AE(ae_title=title)
        ae.add_requested_context(MRImageStorage, ImplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", receiver.port, ae_title="ChRIS")
        assert assoc.is_established
        scu_only(assoc)
        ds = with_transfer_syntax(mr_instance(instance_number=number), ImplicitVRLittleEndian)
        assert assoc.send_c_store(ds).Status == 0x0000, title
        assoc.release()
    receiver.wait_for_log_count(r"association ended", len(HOSTILE_AE_TITLES))
    assert_contained(receiver, len(HOSTILE_AE_TITLES))
    assert len(list(receiver.pacs_root.iterdir())) == len(HOSTILE_AE_TITLES)


def test_hostile_tag_values_stay_under_services_pacs(receiver: RunningReceiver) -> None:
    """``..``, ``/``, NUL and 300-byte values; each instance sent twice gives one file."""
    with RawPeer.connect(receiver.port) as peer:
        peer.associate(associate_rq(calling="..", contexts=((MR_STORAGE, IMPLICIT_LE),)))
        for number, values in enumerate(HOSTILE_VALUES, 1):
            uid, dataset = implicit_dataset(values, number)
            for _ in range(2):
                assert peer.c_store(dataset, uid) == 0x0000, values
        peer.release()
    assert_contained(receiver, len(HOSTILE_VALUES))


def test_ae_titles_with_nul_and_slash_on_a_raw_socket(receiver: RunningReceiver) -> None:
    """Bytes no toolkit would send in an AE title: NUL, '/', and nothing but dots."""
    titles = ["\x00\x00..\x00", "../\x00/..", "." * 16]
    for number, title in enumerate(titles, 1):
        ds = mr_instance(instance_number=number)
        buffer = io.BytesIO()
        write_part10(ds, buffer)  # type: ignore[arg-type]
        with RawPeer.connect(receiver.port) as peer:
            peer.associate(
                associate_rq(calling=title, contexts=((MR_STORAGE, "1.2.840.10008.1.2.1"),))
            )
            status = peer.c_store(dataset_of(buffer.getvalue()), str(ds.SOPInstanceUID))
            assert status == 0x0000, title
            peer.release()
    assert_contained(receiver, len(titles))
