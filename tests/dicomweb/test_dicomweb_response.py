"""The Store Instances Response: HTTP status and application/dicom+json body (PS3.18 10.5.3)."""

from __future__ import annotations

import json

import pydicom

from oxidicom.dicomweb.response import PartOutcome, http_status, response_body

MR = "1.2.840.10008.5.1.4.1.1.4"
STORED = PartOutcome(MR, "1.2.3.1")
FAILED = PartOutcome(MR, "1.2.3.2", 0xC001, "PatientID missing")
NOT_PART10 = PartOutcome(None, None, 0xC000, "not a DICOM Part-10 file")


def test_status_is_200_when_every_part_was_stored() -> None:
    assert http_status([STORED, STORED]) == 200


def test_status_is_202_when_some_failed() -> None:
    assert http_status([STORED, FAILED]) == 202


def test_status_is_409_when_none_was_stored() -> None:
    assert http_status([FAILED, NOT_PART10]) == 409
    assert http_status([]) == 409


def test_body_reads_back_with_pydicom_as_referenced_and_failed_sequences() -> None:
    body = response_body([STORED, FAILED, NOT_PART10])
    ds = pydicom.Dataset.from_json(json.loads(body))
    [stored] = ds.ReferencedSOPSequence
    assert (stored.ReferencedSOPClassUID, stored.ReferencedSOPInstanceUID) == (MR, "1.2.3.1")
    assert "FailureReason" not in stored
    failed, unknown = ds.FailedSOPSequence
    assert (failed.ReferencedSOPInstanceUID, failed.FailureReason) == ("1.2.3.2", 0xC001)
    assert unknown.FailureReason == 0xC000
    assert unknown.ReferencedSOPInstanceUID in (None, "")
    assert "RetrieveURL" in ds  # type 2: present, empty


def test_body_has_no_failed_sequence_when_everything_was_stored() -> None:
    module = json.loads(response_body([STORED]))
    assert "00081198" not in module
    assert module["00081199"]["vr"] == "SQ"
    assert list(module) == sorted(module)


def test_the_body_made_in_pieces_is_the_module_encoded_at_once() -> None:
    import msgspec

    from oxidicom.dicomweb.response import response_module, response_pieces

    many = [PartOutcome(MR, f"1.2.3.{n}", None if n % 3 else 0xC000, "x") for n in range(1, 1200)]
    for outcomes in ([], [STORED], [FAILED, NOT_PART10], many, [o for o in many if o.stored]):
        whole = msgspec.json.encode(response_module(outcomes))
        assert b"".join(response_pieces(outcomes, items=7)) == whole
        assert response_body(outcomes) == whole
