"""LONK bytes and subjects (CONTRACT section 4); the Celery task message (section 3)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oxidicom.dicom.head import HeadFields
from oxidicom.notify import lonk
from oxidicom.notify.celery import TASK_NAME, registration_kwargs, task_message
from oxidicom.storage.layout import series_dir
from tests.sample_data import EXPECTED_TASKS, SAG_UID, STRUCTURAL_SERIES
from tests.storage.test_layout import DATA, fields, head_of

# -- LONK ------------------------------------------------------------------------------


def test_lonk_payloads_are_the_contract_bytes() -> None:
    assert lonk.done() == b"\x00"
    assert lonk.progress(1) == b"\x01\x01\x00\x00\x00"
    assert lonk.progress(384) == b"\x01\x80\x01\x00\x00"
    assert lonk.progress(2**32 - 1) == b"\x01\xff\xff\xff\xff"
    assert lonk.error("missing StudyDate") == b"\x02missing StudyDate"
    assert lonk.error("é") == b"\x02\xc3\xa9"


def test_lonk_subject_replaces_what_cube_replaces() -> None:
    uid = "1.3.12.2.1107.5.2.19.45152.2013030808061520200285270.0.0.0"
    assert lonk.subject_of("oxidicom", "OXITESTORTHANC", uid) == (
        "oxidicom.OXITESTORTHANC.1_3_12_2_1107_5_2_19_45152_2013030808061520200285270_0_0_0"
    )
    assert lonk.subject_of("root", "MY PACS.*>\x00", "1.2") == "root.MY_PACS___.1_2"


@pytest.mark.parametrize("uid", [None, ""])
def test_lonk_subject_of_a_missing_series_is_unknown(uid: str | None) -> None:
    assert lonk.subject_of("oxidicom", "PACS", uid) == "oxidicom.PACS.UNKNOWN"


def test_cube_builds_the_same_subject() -> None:
    """CUBE's pacsfiles/lonk.py subject_of, reproduced: both sides must agree."""

    def cube_subject_of(pacs_name: str, series_instance_uid: str) -> str:
        def part(s: str) -> str:
            return (
                s.replace("\0", "")
                .replace(" ", "_")
                .replace(".", "_")
                .replace("*", "_")
                .replace(">", "_")
            )

        return f"oxidicom.{part(pacs_name)}.{part(series_instance_uid)}"

    for pacs, uid in [("ORTHANC", "1.2.3"), ("A B", "1.2\x00"), ("X*>.", "9.9.9")]:
        assert lonk.subject_of("oxidicom", pacs, uid) == cube_subject_of(pacs, uid)


# -- registration kwargs --------------------------------------------------------------


def series_of(
    head: HeadFields, pacs: str = "OXITESTORTHANC", count: int = 3
) -> tuple[HeadFields, str, str, int]:
    """The arguments of ``registration_kwargs`` for a series of ``count`` files."""
    return head, pacs, series_dir(pacs, head), count


def test_kwargs_of_the_two_sample_series() -> None:
    """The values the reference receiver's integration test expects (CONTRACT section 3)."""
    sag = head_of(next((DATA / "SAG-anon").glob("*.dcm")))
    kwargs, warnings = registration_kwargs(*series_of(sag, count=192))
    assert warnings == []
    assert kwargs == EXPECTED_TASKS[SAG_UID]
    structural = head_of(DATA / "example-dicom-structural" / "dicoms" / "N2D_0001.dcm")
    kwargs, warnings = registration_kwargs(*series_of(structural, count=384))
    assert kwargs["PatientAge"] is None  # "42" has no unit
    assert len(warnings) == 1 and "PatientAge" in warnings[0] and "42" not in warnings[0]
    assert kwargs["AccessionNumber"] is None  # present but empty
    assert kwargs["StudyDescription"] == "Hanke_Stadler^0024_transrep"  # not sanitized
    assert kwargs["StudyDate"] == "2013-07-17"
    assert kwargs["ndicom"] == 384
    assert kwargs["path"] == STRUCTURAL_SERIES


@pytest.mark.parametrize(
    ("age", "days"), [("030Y", 10957), ("020D", 20), ("2W", 14), ("5M", 152), (None, None)]
)
def test_kwargs_patient_age_in_days(age: str | None, days: int | None) -> None:
    kwargs, warnings = registration_kwargs(*series_of(fields(patient_age=age)))
    assert kwargs["PatientAge"] == days
    assert warnings == []


def test_kwargs_absent_or_empty_optional_values_are_null() -> None:
    head = fields(
        patient_name=None,
        patient_birth_date="",
        patient_sex=None,
        accession_number="",
        modality=None,
        protocol_name=None,
        study_description=None,
        series_description="",
        patient_age="",
        patient_id="",
    )
    kwargs, warnings = registration_kwargs(*series_of(head))
    optional = [
        "PatientName",
        "PatientBirthDate",
        "PatientAge",
        "PatientSex",
        "AccessionNumber",
        "Modality",
        "ProtocolName",
        "StudyDescription",
        "SeriesDescription",
    ]
    assert {key: kwargs[key] for key in optional} == dict.fromkeys(optional)
    assert kwargs["PatientID"] == ""  # Type 2: present and empty is allowed
    assert warnings == []


def test_kwargs_iso_study_date_is_tolerated() -> None:
    kwargs, _ = registration_kwargs(*series_of(fields(study_date="2013-03-08")))
    assert kwargs["StudyDate"] == "2013-03-08"


@pytest.mark.parametrize(
    ("ae_title", "pacs_name"),
    [("OXITESTORTHANC", "OXITESTORTHANC"), ("MY PACS", "MY_PACS"), ("..", "_..")],
)
def test_kwargs_pacs_name_is_the_path_component(ae_title: str, pacs_name: str) -> None:
    """CUBE refuses a path that does not start with SERVICES/PACS/{pacs_name}/."""
    kwargs, _ = registration_kwargs(*series_of(fields(), pacs=ae_title))
    assert kwargs["pacs_name"] == pacs_name
    assert kwargs["path"].startswith(f"SERVICES/PACS/{pacs_name}/")
    assert "/" not in kwargs["pacs_name"] and "," not in kwargs["pacs_name"]


# -- the Celery message ---------------------------------------------------------------


def sample_kwargs() -> dict[str, Any]:
    return registration_kwargs(*series_of(fields()))[0]


def test_task_message_body_headers_and_properties() -> None:
    kwargs = sample_kwargs()
    message = task_message("task-1", kwargs, "oxidicom1@host")
    assert json.loads(message.body) == [
        [],
        kwargs,
        {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
    ]
    assert message.content_type == "application/json"
    assert message.content_encoding == "utf-8"
    assert message.delivery_mode == 2
    assert message.correlation_id == "task-1"
    required = {"lang", "task", "id", "root_id", "parent_id", "group", "retries", "eta"}
    required |= {"expires", "timelimit", "argsrepr", "kwargsrepr", "origin"}
    assert required <= message.headers.keys()
    assert message.headers["task"] == TASK_NAME
    assert message.headers["id"] == message.headers["root_id"] == "task-1"


def test_task_message_non_ascii_text_survives() -> None:
    kwargs = {**sample_kwargs(), "PatientName": "Müller^Zoë", "StudyDescription": "脳"}
    message = task_message("t", kwargs, "o")
    assert json.loads(message.body.decode("utf-8"))[1] == kwargs


def test_task_message_is_what_celery_itself_sends() -> None:
    """Celery's own as_task_v2 for the same task: same headers, properties and body."""
    import celery  # a test dependency: the worker of the integration tests

    app = celery.Celery("reference", set_as_current=False)
    kwargs = sample_kwargs()
    theirs = app.amqp.as_task_v2("task-1", TASK_NAME, args=(), kwargs=kwargs, origin="o@h")
    ours = task_message("task-1", kwargs, "o@h")
    assert ours.headers == theirs.headers
    assert ours.correlation_id == theirs.properties["correlation_id"]
    assert ours.reply_to == theirs.properties["reply_to"]
    assert json.loads(ours.body) == json.loads(json.dumps(theirs.body))
    conf = app.conf
    assert (conf.task_serializer, conf.task_default_delivery_mode) == ("json", 2)


def test_long_kwargsrepr_is_cut_like_celery() -> None:
    kwargs = {**sample_kwargs(), "SeriesDescription": "x" * 5000}
    assert len(task_message("t", kwargs, "o").headers["kwargsrepr"]) <= 1024
