"""The registration task as a Celery message (CONTRACT section 3); pure encoding.

Over AMQP the message is :class:`TaskMessage` as basic properties and body; over Redis it
is one JSON document, :func:`kombu_redis_message`, pushed onto the queue's list.

CUBE registers a received series when its Celery worker runs
``pacsfiles.tasks.register_pacs_series(PatientID, StudyDate, StudyInstanceUID,
SeriesInstanceUID, pacs_name, path, ndicom, PatientName=None, PatientBirthDate=None,
PatientAge=None, PatientSex=None, AccessionNumber=None, Modality=None, ProtocolName=None,
StudyDescription=None, SeriesDescription=None)``. The message follows Celery's task message
protocol version 2 (the headers and properties that ``celery.app.amqp.AMQP.as_task_v2``
writes, JSON body ``[args, kwargs, embed]``), so a Celery 5 worker runs it as if Celery had
sent it.

``pacs_name`` is the ``{pacs}`` folder of the path (the calling AE title, trimmed and
sanitized, :func:`~oxidicom.storage.layout.pacs_dir_name`). CUBE's serializer refuses a
series whose ``path`` does not start with ``SERVICES/PACS/{pacs_name}/``; for every AE title
made of letters, digits, ``.``, ``-`` and single ``_`` (all titles seen in practice, and
the reference receiver's tests) this is the AE title itself, as the reference sends it. For
an AE title such as ``MY PACS`` the reference sends ``MY PACS`` with a path under
``MY_PACS/``, which CUBE refuses; we send ``MY_PACS``, which it accepts.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from oxidicom.dicom.head import HeadFields
from oxidicom.storage.layout import pacs_dir_name, patient_age_days, study_date_iso

TASK_NAME: Final = "pacsfiles.tasks.register_pacs_series"
CONTENT_TYPE: Final = "application/json"
CONTENT_ENCODING: Final = "utf-8"
#: AMQP basic.properties delivery-mode 2: the broker keeps the message on disk.
PERSISTENT: Final = 2
#: Celery truncates ``argsrepr``/``kwargsrepr`` to this many characters.
_REPR_MAX: Final = 1024
_EMBED: Final = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def registration_kwargs(
    fields: HeadFields, pacs_name: str, series_dir: str, ndicom: int
) -> tuple[dict[str, Any], list[str]]:
    """The task's keyword arguments for one series, and warnings to log (no patient data).

    ``fields`` is the head of the series' first stored instance, ``pacs_name`` the calling
    AE title, ``series_dir`` the series folder relative to FILES_ROOT. Text values are as
    received (decoded, surrounding spaces and NUL removed, never sanitized); absent or
    empty optional values are ``None``. ``StudyDate`` is ``YYYY-MM-DD``; ``PatientAge``
    is a number of days or ``None``.
    """
    warnings = []
    age = patient_age_days(fields.patient_age)
    if age is None and fields.patient_age:
        warnings.append(
            f"PatientAge of series {fields.series_instance_uid} is not an age string"
            " nnnD/nnnW/nnnM/nnnY; registered without PatientAge"
        )
    kwargs: dict[str, Any] = {
        "PatientID": fields.patient_id or "",
        "StudyDate": study_date_iso(fields.study_date or ""),
        "StudyInstanceUID": fields.study_instance_uid,
        "SeriesInstanceUID": fields.series_instance_uid,
        "pacs_name": pacs_dir_name(pacs_name),
        "path": series_dir,
        "ndicom": ndicom,
        "PatientName": fields.patient_name or None,
        "PatientBirthDate": fields.patient_birth_date or None,
        "PatientAge": age,
        "PatientSex": fields.patient_sex or None,
        "AccessionNumber": fields.accession_number or None,
        "Modality": fields.modality or None,
        "ProtocolName": fields.protocol_name or None,
        "StudyDescription": fields.study_description or None,
        "SeriesDescription": fields.series_description or None,
    }
    return kwargs, warnings


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """One AMQP message: body, application headers and basic properties."""

    body: bytes
    headers: dict[str, Any]
    content_type: str
    content_encoding: str
    delivery_mode: int
    correlation_id: str
    reply_to: str


def default_origin() -> str:
    """The ``origin`` header: who sent the task (Celery writes ``gen{pid}@{host}``)."""
    return f"oxidicom{os.getpid()}@{socket.gethostname()}"


def _truncated_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 3] + "..."


def task_message(task_id: str, kwargs: Mapping[str, Any], origin: str) -> TaskMessage:
    """The Celery protocol v2 message that runs ``TASK_NAME(**kwargs)`` once.

    ``task_id`` is kept across retries, so a repeated delivery is recognisable.
    """
    body = json.dumps([[], dict(kwargs), _EMBED], ensure_ascii=False, separators=(",", ":"))
    headers = {
        "lang": "py",
        "task": TASK_NAME,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": "()",
        "kwargsrepr": _truncated_repr(dict(kwargs)),
        "origin": origin,
        "ignore_result": False,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    return TaskMessage(
        body=body.encode(CONTENT_ENCODING),
        headers=headers,
        content_type=CONTENT_TYPE,
        content_encoding=CONTENT_ENCODING,
        delivery_mode=PERSISTENT,
        correlation_id=task_id,
        reply_to="",
    )


#: kombu's Redis transport (``kombu.transport.virtual``): the body is carried in base64,
#: and a message without priority has priority 0, which lives in the list named like the
#: queue itself (kombu's ``_q_for_pri``).
KOMBU_BODY_ENCODING: Final = "base64"
KOMBU_DEFAULT_PRIORITY: Final = 0


def kombu_redis_message(message: TaskMessage, queue: str, delivery_tag: str) -> bytes:
    """``message`` as kombu's Redis transport stores it in the list ``queue``.

    The layout is what Celery 5's ``send_task`` leaves in Redis for a task routed to a
    queue (``Channel.prepare_message`` and ``_inplace_augment_message`` of kombu's virtual
    transport): the headers, the base64 body and the properties, with ``delivery_info``
    naming the default exchange and the queue, so that a worker that gives the message
    back (a visibility timeout, a warm shutdown) puts it on the same list without any
    binding table. ``delivery_tag`` must be new for every push (kombu's unacked hash is
    keyed by it): a fresh UUID4, as kombu's is.
    """
    envelope = {
        "body": base64.b64encode(message.body).decode("ascii"),
        "content-encoding": message.content_encoding,
        "content-type": message.content_type,
        "headers": message.headers,
        "properties": {
            "correlation_id": message.correlation_id,
            "reply_to": message.reply_to,
            "delivery_mode": message.delivery_mode,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": KOMBU_DEFAULT_PRIORITY,
            "body_encoding": KOMBU_BODY_ENCODING,
            "delivery_tag": delivery_tag,
        },
    }
    # kombu's JSON is ASCII (non-ASCII text as \u escapes); so is ours, byte for byte.
    return json.dumps(envelope).encode("ascii")
