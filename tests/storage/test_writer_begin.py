"""Store.begin, both twins: the file meta in front of the data set is part10's, byte for
byte, however the UIDs, syntaxes and titles follow one another, and its errors too."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxidicom.dicom.errors import DatasetError
from oxidicom.dicom.part10 import file_meta
from oxidicom.storage.writer import Store
from tests.storage.writer_twins import writer_twin_fixture

writer_twin = writer_twin_fixture()

MR = "1.2.840.10008.5.1.4.1.1.4"
CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "files")
    store.prepare()
    return store


# (class, instance UID, syntax, title), one after the other in one store: repeats, then
# each of the four changing, odd and even UIDs, a non-ASCII UID and title.
SEQUENCE = [
    (MR, "1.2.3.4", EXPLICIT_LE, "PACS"),
    (MR, "1.2.3.5", EXPLICIT_LE, "PACS"),
    (MR, "1.2.3.45", EXPLICIT_LE, "PACS"),
    (MR, "1.2.3.46", EXPLICIT_LE, "PACS"),
    (CT, "1.2.3.47", EXPLICIT_LE, "PACS"),
    (CT, "1.2.3.48", IMPLICIT_LE, "PACS"),
    (CT, "1.2.3.49", IMPLICIT_LE, "OTHER"),
    (CT, "1.2.3.50", IMPLICIT_LE, ""),
    (CT, "1.2.3.é", IMPLICIT_LE, "OTHER"),
    (CT, "1.2.3.51", IMPLICIT_LE, "PAÇS"),
    (CT, "1." + "2" * 999, IMPLICIT_LE, "PAÇS"),
    (MR, "1.2.3.4", EXPLICIT_LE, "PACS"),
]


def test_the_file_meta_is_part10s(store: Store) -> None:
    for sop_class, uid, syntax, title in SEQUENCE:
        writer = store.begin(
            pacs_name=title,
            sop_class_uid=sop_class,
            sop_instance_uid=uid,
            transfer_syntax_uid=syntax,
        )
        assert writer._parts[0] == file_meta(sop_class, uid, syntax, title), uid
        assert writer._command_uids == (sop_class, uid)
        writer.abandon()


@pytest.mark.parametrize("length", [0xFFFE, 0xFFFF, 0x10000])
def test_a_uid_too_long_for_the_meta_is_refused_as_part10_refuses_it(
    store: Store, length: int
) -> None:
    uid = "1." + "2" * (length - 2)

    def answer(call: object) -> object:
        try:
            return call()  # type: ignore[operator]
        except DatasetError as error:
            return (type(error), error.status, error.comment)

    expected = answer(lambda: file_meta(MR, uid, EXPLICIT_LE, "PACS"))
    got = answer(
        lambda: store.begin(
            pacs_name="PACS",
            sop_class_uid=MR,
            sop_instance_uid=uid,
            transfer_syntax_uid=EXPLICIT_LE,
        )._parts[0]
    )
    assert got == expected
    assert (length <= 0xFFFE) == isinstance(expected, bytes)


def test_temporary_names_follow_one_another(store: Store) -> None:
    temps = [
        store.begin(
            pacs_name="PACS",
            sop_class_uid=MR,
            sop_instance_uid=f"1.2.{n}",
            transfer_syntax_uid=EXPLICIT_LE,
        )._temp
        for n in range(3)
    ]
    assert len(set(temps)) == 3
    assert all(t.startswith(str(store.work_dir.path)) and t.endswith(".part") for t in temps)
