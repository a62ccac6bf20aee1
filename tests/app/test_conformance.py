"""The conformance statement states exactly what the code accepts and answers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from oxidicom.app.conformance import STATUSES, render
from oxidicom.dicom.uids import (
    SIEMENS_PRIVATE_STORAGE_SOP_CLASSES,
    VERIFICATION_SOP_CLASS,
)

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "conformance.md"
REGENERATE = "regenerate it: python -m oxidicom.app.conformance > docs/conformance.md"


def _table_uids(text: str, name: str) -> list[str]:
    block = text.split(f"<!-- {name} -->")[1].split(f"<!-- /{name} -->")[0]
    return re.findall(r"^\|[^|]+\| `([0-9.]+)` \|$", block, re.M)


# The tables are read from pydicom's UID dictionary at import, and pynetdicom (a test
# dependency) adds entries to it when imported first: ask a fresh interpreter, as the
# receiver runs, what the code accepts.
_ACCEPTED = """
import json
from oxidicom.dicom.uids import STORAGE_SOP_CLASSES, TRANSFER_SYNTAXES
print(json.dumps([sorted(STORAGE_SOP_CLASSES), sorted(TRANSFER_SYNTAXES)]))
"""


def _fresh(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def test_committed_statement_is_the_generated_one() -> None:
    assert DOCUMENT.read_text() == _fresh("-m", "oxidicom.app.conformance"), REGENERATE


def test_it_lists_exactly_the_sop_classes_and_transfer_syntaxes_accepted() -> None:
    storage, transfer = (set(uids) for uids in json.loads(_fresh("-c", _ACCEPTED)))
    text = DOCUMENT.read_text()
    standard = _table_uids(text, "sop-classes")
    private = _table_uids(text, "private-sop-classes")
    syntaxes = _table_uids(text, "transfer-syntaxes")
    assert len(standard) == len(set(standard)) and len(syntaxes) == len(set(syntaxes))
    assert set(standard) | set(private) == storage | {VERIFICATION_SOP_CLASS}
    assert set(private) == SIEMENS_PRIVATE_STORAGE_SOP_CLASSES
    assert set(syntaxes) == transfer


def test_every_status_the_code_sends_is_listed() -> None:
    text = DOCUMENT.read_text()
    block = text.split("<!-- statuses -->")[1].split("<!-- /statuses -->")[0]
    listed = set(re.findall(r"^\| `([0-9A-F]{4})` \|", block, re.M))
    assert listed == {f"{status:04X}" for status, _, _ in STATUSES}
    # Status names used where responses are made, and the error classes' codes.
    from oxidicom.dimse.commands import Status

    sources = (ROOT / "oxidicom" / "scp" / "association.py").read_text()
    used = {getattr(Status, name) for name in re.findall(r"Status\.([A-Z_]+)", sources)}
    errors = (ROOT / "oxidicom" / "dicom" / "errors.py").read_text()
    used |= {int(code, 16) for code in re.findall(r"Final = 0x([0-9A-F]{4})", errors)}
    writer = (ROOT / "oxidicom" / "storage" / "writer.py").read_text()
    used |= {int(code, 16) for code in re.findall(r"_OUT_OF_RESOURCES = 0x([0-9A-F]{4})", writer)}
    assert {f"{code:04X}" for code in used} <= listed


def test_defaults_stated_are_the_settings_defaults() -> None:
    text = DOCUMENT.read_text()
    from oxidicom.app.settings import load_settings

    settings = load_settings({}, cwd=ROOT)
    assert f"maximum PDU length offered is {settings.scp_max_pdu_length} bytes" in text
    assert f"Up to {settings.max_associations} concurrent associations" in text
    assert f"(`OXIDICOM_SCP_AET`, default `{settings.scp_aet}`)" in text


def test_statuses_in_the_document_are_the_generator_table() -> None:
    block = render().split("<!-- statuses -->")[1].split("<!-- /statuses -->")[0]
    assert block in DOCUMENT.read_text()
