"""Lines logged on an association's behalf by code that knows nothing of it carry its id."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from oxidicom.aio.server import Receiver
from oxidicom.app.settings import load_settings
from oxidicom.scp.services import ScpService
from oxidicom.storage.series import SeriesRecord
from oxidicom.storage.writer import Store
from oxidicom.telemetry import logs
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.conftest import require_tool
from tests.telemetry.helpers import SilentNotifier
from tests.telemetry.test_association_telemetry import storescu

quiet = logging.getLogger("tests.quiet_notifier")


class QuietNotifier(SilentNotifier):
    """Logs without passing the association: it must come from the context."""

    def instance_stored(self, series: SeriesRecord) -> None:
        quiet.info("stored one of %s", series.series_instance_uid)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(logs.AssociationFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_storage_callbacks_log_with_the_association_id(tmp_path: Path) -> None:
    require_tool("/usr/bin/storescu")
    files = [write_part10(mr_instance(instance_number=n), tmp_path / f"{n}.dcm") for n in (1, 2)]
    settings = load_settings(
        {
            "OXIDICOM_FILES_ROOT": str(tmp_path / "files"),
            "OXIDICOM_OUTBOX_DIR": str(tmp_path / "outbox"),
            "OXIDICOM_LISTENER_PORT": "0",
            "OXIDICOM_LISTENER_ADDRESS": "127.0.0.1",
        }
    )
    store = Store(settings.files_root)
    store.prepare()
    receiver = Receiver(ScpService(settings, store, QuietNotifier()))
    capture = Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        await receiver.start()
        await storescu(receiver.port, *files)
        await storescu(receiver.port, *files)
        await receiver.stop(5)
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    quiet_records = [r for r in capture.records if r.name == quiet.name]
    accepted = [r.association for r in capture.records if "accepted" in r.getMessage()]
    assert len(quiet_records) == 4 and len(accepted) == 2 and accepted[0] != accepted[1]
    assert [r.association for r in quiet_records] == [accepted[0]] * 2 + [accepted[1]] * 2
    # Outside associations, nothing is attached.
    assert logs.CURRENT_ASSOCIATION.get() is None


def test_json_lines_stay_one_line_with_exceptions() -> None:
    out = io.StringIO()
    logger = logging.getLogger("tests.json")
    assert logs.configure("INFO", "json", out) == "json"
    try:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            logger.exception("it failed:\n%s", "twice")
        logger.info("plain", extra={"association": "ab-1"})
    finally:
        logging.getLogger().handlers.clear()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    failed, plain = (json.loads(line) for line in lines)
    assert failed["message"] == "it failed:\ntwice"
    assert "ValueError: bad" in failed["exception"]
    assert "association" not in failed
    assert plain["association"] == "ab-1" and plain["level"] == "INFO"


@pytest.mark.parametrize(("isatty", "chosen"), [(True, "text"), (False, "json")])
def test_auto_is_text_on_a_terminal_and_json_elsewhere(isatty: bool, chosen: str) -> None:
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return isatty

    assert logs.resolve_format("auto", Stream()) == chosen
    assert logs.resolve_format("json", Stream()) == "json"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_worker_names_itself_on_every_line(log_format: str) -> None:
    out = io.StringIO()
    logger = logging.getLogger("tests.worker")
    logs.configure("INFO", log_format, out, worker=2)
    try:
        logger.info("stopped")
        logs.configure("INFO", log_format, out)  # one process: no worker
        logger.info("stopped")
    finally:
        logging.getLogger().handlers.clear()
    worker, alone = out.getvalue().splitlines()
    if log_format == "json":
        assert json.loads(worker)["worker"] == 2
        assert "worker" not in json.loads(alone)
    else:
        assert " worker-2 INFO tests.worker [-] stopped" in worker
        assert " INFO tests.worker [-] stopped" in alone
