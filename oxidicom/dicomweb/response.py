"""The Store Instances Response (PS3.18 10.5.3 and Annex I) in the DICOM JSON model (F.2).

Per part: an item of ReferencedSOPSequence (0008,1199) when it was stored, of
FailedSOPSequence (0008,1198) with its FailureReason (0008,1197) when it was not. The
HTTP status: 200 when every part was stored, 202 when some were, 409 when none was.
RetrieveURL (0008,1190) is type 2 and is sent empty: this receiver offers no WADO-RS.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgspec

MEDIA_TYPE: Final = "application/dicom+json"

_RETRIEVE_URL: Final = "00081190"
_FAILURE_REASON: Final = "00081197"
_FAILED_SOP_SEQUENCE: Final = "00081198"
_REFERENCED_SOP_SEQUENCE: Final = "00081199"
_REFERENCED_SOP_CLASS_UID: Final = "00081150"
_REFERENCED_SOP_INSTANCE_UID: Final = "00081155"


@dataclass(frozen=True, slots=True)
class PartOutcome:
    """What became of one part: ``failure_reason`` None when it was stored."""

    sop_class_uid: str | None
    sop_instance_uid: str | None
    failure_reason: int | None = None
    comment: str = ""

    @property
    def stored(self) -> bool:
        return self.failure_reason is None


def http_status(outcomes: list[PartOutcome]) -> int:
    """200 all stored, 202 some, 409 none (PS3.18 Table 10.5.3-1)."""
    stored = sum(1 for outcome in outcomes if outcome.stored)
    if outcomes and stored == len(outcomes):
        return 200
    return 202 if stored else 409


def _uid(value: str | None) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def _item(outcome: PartOutcome) -> dict[str, Any]:
    item: dict[str, Any] = {
        _REFERENCED_SOP_CLASS_UID: _uid(outcome.sop_class_uid),
        _REFERENCED_SOP_INSTANCE_UID: _uid(outcome.sop_instance_uid),
    }
    if outcome.failure_reason is None:
        item[_RETRIEVE_URL] = {"vr": "UR"}
    else:
        item[_FAILURE_REASON] = {"vr": "US", "Value": [outcome.failure_reason]}
    return item


def response_module(outcomes: list[PartOutcome]) -> dict[str, Any]:
    """The Store Instances Response Module as a DICOM JSON object."""
    module: dict[str, Any] = {_RETRIEVE_URL: {"vr": "UR"}}
    failed = [_item(o) for o in outcomes if not o.stored]
    stored = [_item(o) for o in outcomes if o.stored]
    if failed:
        module[_FAILED_SOP_SEQUENCE] = {"vr": "SQ", "Value": failed}
    if stored:
        module[_REFERENCED_SOP_SEQUENCE] = {"vr": "SQ", "Value": stored}
    # DICOM JSON orders attributes by tag (F.2.1.1 asks only for valid JSON; sorted reads well).
    return dict(sorted(module.items()))


def response_body(outcomes: list[PartOutcome]) -> bytes:
    """The response body: one data set as a DICOM JSON object (PS3.18 F.2)."""
    return b"".join(response_pieces(outcomes))


#: Items encoded at a time by :func:`response_pieces` (~1-2 ms of work each).
PIECE_ITEMS: Final = 500


def response_pieces(outcomes: list[PartOutcome], items: int = PIECE_ITEMS) -> Iterator[bytes]:
    """The bytes of :func:`response_body`, a few hundred items at a time, so that the
    answer to a request of thousands of parts can be made between other peers' work."""
    yield b'{"%s":{"vr":"UR"}' % _RETRIEVE_URL.encode()
    failed = [o for o in outcomes if not o.stored]
    stored = [o for o in outcomes if o.stored]
    for tag, sequence in ((_FAILED_SOP_SEQUENCE, failed), (_REFERENCED_SOP_SEQUENCE, stored)):
        if not sequence:
            continue
        yield b',"%s":{"vr":"SQ","Value":[' % tag.encode()
        for start in range(0, len(sequence), items):
            encoded = msgspec.json.encode([_item(o) for o in sequence[start : start + items]])
            yield (b"," if start else b"") + encoded[1:-1]
        yield b"]}"
    yield b"}"
