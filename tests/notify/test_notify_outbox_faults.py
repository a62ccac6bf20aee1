"""An outbox that cannot be written loses no registration: the promises stay in the
series journal, the write is retried with backoff, an ERROR says it started and a
WARNING that it is over, and ``oxidicom.registrations.unwritten`` counts them. At a stop
they stay in the journal, and the next start registers them.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from oxidicom import telemetry
from oxidicom.notify.journal import SeriesJournal
from oxidicom.notify.outbox import Outbox, Registration
from oxidicom.notify.registrations import KEPT, Registrations
from oxidicom.storage.series import SeriesRecord
from tests.storage.test_layout import fields


class FailingOutbox(Outbox):
    """An outbox whose writes fail (ENOSPC unless told otherwise) while ``full``."""

    full = False
    errno = errno.ENOSPC

    def add(self, registration: Registration, *, sync_directory: bool = True) -> str:
        if self.full:
            raise OSError(self.errno, os.strerror(self.errno))
        return super().add(registration, sync_directory=sync_directory)


def make_registrations(tmp_path: Path) -> tuple[Registrations, FailingOutbox]:
    outbox = FailingOutbox(tmp_path / "outbox")
    journal = SeriesJournal(tmp_path / "outbox", tmp_path / "files")
    registrations = Registrations(outbox, "q", None, journal, retry_first=0.01, retry_max=0.04)
    return registrations, outbox


def promise(registrations: Registrations, files: Path, n: int) -> SeriesRecord:
    """Series ``n`` of association a-1, promised, with two files stored in its folder."""
    uid = f"1.2.3.{n}"
    series_dir = f"SERVICES/PACS/PACS/{uid}"
    (files / series_dir).mkdir(parents=True)
    for number in (1, 2):
        (files / series_dir / f"{number:04d}.dcm").write_bytes(b"")
    record = SeriesRecord("a-1", "PACS", uid, count=2)
    registrations.promise(record, fields(series_instance_uid=uid), series_dir)
    return record


def journal_entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "outbox" / ".journal").rglob("*.json"))


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO, errno.EROFS], ids=errno.errorcode.get)
async def test_a_full_outbox_keeps_the_registrations_and_writes_them_once_it_has_room(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, error: int
) -> None:
    registrations, outbox = make_registrations(tmp_path)
    await registrations.start()
    records = [promise(registrations, tmp_path / "files", n) for n in range(3)]
    outbox.full = True
    outbox.errno = error
    with caplog.at_level(logging.INFO, "oxidicom.registrations"):
        await registrations.register(records, None)
        assert registrations.unwritten == 3
        assert telemetry.TALLIES.registrations_unwritten == 3
        assert outbox.names() == []
        assert len(journal_entries(tmp_path)) == 3  # a crash now still registers them
        [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert "cannot write 3 registration(s) to the outbox" in logged.getMessage()
        assert os.strerror(outbox.errno) in logged.getMessage()

        retrying = registrations._retrying
        assert retrying is not None
        outbox.full = False
        await retrying
    assert registrations.unwritten == 0
    assert telemetry.TALLIES.registrations_unwritten == 0
    entries = [Registration.from_json((outbox.directory / n).read_bytes()) for n in outbox.names()]
    assert sorted(e.kwargs["SeriesInstanceUID"] for e in entries) == [
        "1.2.3.0",
        "1.2.3.1",
        "1.2.3.2",
    ]
    assert {e.kwargs["ndicom"] for e in entries} == {2}
    assert journal_entries(tmp_path) == []
    assert any(
        r.levelno == logging.WARNING and "writable again: 3 delayed" in r.getMessage()
        for r in caplog.records
    )
    await registrations.stop(1.0)


async def test_what_is_unwritten_at_the_stop_is_registered_by_the_next_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registrations, outbox = make_registrations(tmp_path)
    await registrations.start()
    records = [promise(registrations, tmp_path / "files", n) for n in range(2)]
    outbox.full = True
    await registrations.register(records, None)
    with caplog.at_level(logging.ERROR, "oxidicom.registrations"):
        await registrations.stop(1.0)
    assert "2 registration(s) could not be written to the outbox" in caplog.text
    assert len(journal_entries(tmp_path)) == 2  # the stopped process's folder kept them
    assert outbox.names() == []

    again, outbox = make_registrations(tmp_path)
    await again.start()
    try:
        entries = [
            Registration.from_json((outbox.directory / n).read_bytes()) for n in outbox.names()
        ]
        assert sorted((e.kwargs["SeriesInstanceUID"], e.kwargs["ndicom"]) for e in entries) == [
            ("1.2.3.0", 2),
            ("1.2.3.1", 2),
        ]
        assert journal_entries(tmp_path) == []
    finally:
        await again.stop(1.0)


async def test_a_promise_that_cannot_be_journaled_raises_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    registrations, _ = make_registrations(tmp_path)
    await registrations.start()
    journal = registrations.journal
    own = journal._prefix
    (tmp_path / "not-a-folder").write_bytes(b"")
    journal._prefix = f"{tmp_path / 'not-a-folder'}/"  # every write fails (ENOTDIR)
    record = SeriesRecord("a-1", "PACS", "1.2.3")
    try:
        with pytest.raises(OSError):
            registrations.promise(record, fields(series_instance_uid="1.2.3"), "SERVICES/x")
        assert record.journal_key is None  # the next file of the series tries again
    finally:
        journal._prefix = own
        await registrations.stop(1.0)
    assert journal_entries(tmp_path) == []


async def test_a_settled_series_the_outbox_refuses_is_kept_and_registered_whole_later(
    tmp_path: Path,
) -> None:
    """Series that settle: an outbox failing (EIO) at the settle keeps the hold, and the
    retry registers the files of the folder then, once."""
    registrations, outbox = make_registrations(tmp_path)
    await registrations.start()
    series_dir = "SERVICES/PACS/PACS/1.2.3.9"
    (tmp_path / "files" / series_dir).mkdir(parents=True)
    (tmp_path / "files" / series_dir / "0001.dcm").write_bytes(b"")
    key = "s-" + "0" * 32 + "-1"
    record = SeriesRecord("a-1", "PACS", "1.2.3.9")
    registrations.promise(record, fields(series_instance_uid="1.2.3.9"), series_dir, key=key)
    outbox.full, outbox.errno = True, errno.EIO
    assert await registrations.settle([key], lambda digest: False) == {key: KEPT}
    assert outbox.names() == []
    assert len(journal_entries(tmp_path)) == 1
    (tmp_path / "files" / series_dir / "0002.dcm").write_bytes(b"")  # stored meanwhile
    retrying = registrations._retrying
    assert retrying is not None
    outbox.full = False
    await retrying
    [name] = outbox.names()
    assert Registration.from_json((outbox.directory / name).read_bytes()).kwargs["ndicom"] == 2
    assert journal_entries(tmp_path) == []
    await registrations.stop(1.0)
