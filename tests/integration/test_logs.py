"""The logs of a real run: JSON lines off a terminal, each association's id on its lines,
no patient data above DEBUG."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.dicom_factory import mr_instance, write_part10
from tests.integration.conftest import ECHOSCU, echoscu, require_tool
from tests.integration.receiver import start_receiver

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"
PATIENT = {
    "PatientName": "Secretname^Patient",
    "PatientID": "PIDSECRET42",
    "PatientBirthDate": "19111111",
}


def test_json_lines_carry_the_association_id_and_no_patient_data(tmp_path: Path) -> None:
    require_tool(STORESCU)
    require_tool(ECHOSCU)
    series = "1.2.826.0.1.3680043.8.498.77"
    good = [
        write_part10(
            mr_instance(instance_number=n, series_uid=series, **PATIENT), tmp_path / f"{n}.dcm"
        )
        for n in (1, 2, 3)
    ]
    bad = write_part10(
        mr_instance(instance_number=4, series_uid=series, StudyDate=None, **PATIENT),
        tmp_path / "bad.dcm",
    )
    # auto: stderr is a pipe here, so the receiver must choose JSON by itself. Series are
    # registered per association (settle 0), so that the end of the series is one of the
    # association's own lines, before the next association's.
    receiver = start_receiver(
        tmp_path / "rx", {"OXIDICOM_LOG_FORMAT": "auto", "OXIDICOM_SERIES_SETTLE": "0"}
    )
    try:
        subprocess.run(
            [STORESCU, "-aet", "LOGPACS", "-aec", "ChRIS", "127.0.0.1", str(receiver.port)]
            + [str(f) for f in (*good, bad)],
            capture_output=True,
            timeout=60,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        echoed = echoscu(receiver.port, "-aet", "LOGECHO")
        assert echoed.returncode == 0
    finally:
        assert receiver.stop() == 0
    assert len(receiver.stored_files()) == 3

    events = [json.loads(line) for line in receiver.lines]  # every line is one JSON event
    for event in events:
        assert {"time", "level", "logger", "message"} <= set(event)
        assert event["time"].endswith("Z")

    def association_of(ae_title: str) -> str:
        (accepted,) = [e for e in events if f"association from {ae_title}@" in e["message"]]
        return accepted["association"]

    store_id, echo_id = association_of("LOGPACS"), association_of("LOGECHO")
    assert store_id != echo_id
    for association_id in (store_id, echo_id):
        mine = [i for i, e in enumerate(events) if e.get("association") == association_id]
        # Every line from the association's first to its last is the association's:
        # one association at a time here, so nothing else may appear in between.
        for event in events[mine[0] : mine[-1] + 1]:
            assert event.get("association") == association_id, event
    store_lines = [e for e in events if e.get("association") == store_id]
    messages = "\n".join(e["message"] for e in store_lines)
    assert "refused: status C001" in messages  # the bad instance, at WARNING
    assert f"series finished: 3 file(s) of {series}" in messages
    assert any(e["level"] == "DEBUG" and series in e["message"] for e in store_lines)
    # Anything naming the sent data belongs to the storing association.
    for event in events:
        if series in event["message"] or "LOGPACS" in event["message"]:
            assert event.get("association") == store_id, event

    above_debug = "\n".join(json.dumps(e) for e in events if e["level"] != "DEBUG")
    debug = "\n".join(json.dumps(e) for e in events if e["level"] == "DEBUG")
    for secret in (*PATIENT.values(), "Secretname"):
        assert secret not in above_debug, secret
    # The check above can fail: the same data does reach DEBUG lines (the series folder).
    assert "PIDSECRET42" in debug


def test_text_format_is_one_readable_line_per_event(tmp_path: Path) -> None:
    require_tool(ECHOSCU)
    receiver = start_receiver(tmp_path, {"OXIDICOM_LOG_FORMAT": "text"})
    try:
        assert echoscu(receiver.port).returncode == 0
    finally:
        assert receiver.stop() == 0
    accepted = next(line for line in receiver.lines if "association from ECHOSCU@" in line)
    assert not accepted.startswith("{")
    assert " INFO oxidicom.association [" in accepted
    start = next(line for line in receiver.lines if "listening on" in line)
    assert " [-] " in start
