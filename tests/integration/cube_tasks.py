# ruff: noqa: N803 - the parameter names are CUBE's
"""A stand-in for CUBE's Celery app: ``pacsfiles.tasks.register_pacs_series`` with CUBE's
signature (ChRIS_ultron_backEnd ``chris_backend/pacsfiles/tasks.py``), printing its
arguments instead of registering. Run by ``celery -A tests.integration.cube_tasks worker``.
"""

from __future__ import annotations

import json
import os

from celery import Celery

app = Celery(
    "cube_stand_in",
    broker=os.environ.get("CUBE_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//"),
    set_as_current=False,
)
app.conf.update(
    worker_redirect_stdouts=False,
    worker_enable_remote_control=False,
    worker_send_task_events=False,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
)


@app.task(name="pacsfiles.tasks.register_pacs_series")
def register_pacs_series(
    PatientID: str,
    StudyDate: str,
    StudyInstanceUID: str,
    SeriesInstanceUID: str,
    pacs_name: str,
    path: str,
    ndicom: int,
    PatientName: str | None = None,
    PatientBirthDate: str | None = None,
    PatientAge: int | None = None,
    PatientSex: str | None = None,
    AccessionNumber: str | None = None,
    Modality: str | None = None,
    ProtocolName: str | None = None,
    StudyDescription: str | None = None,
    SeriesDescription: str | None = None,
) -> None:
    arguments = dict(locals())
    print("REGISTERED " + json.dumps(arguments, sort_keys=True), flush=True)


@app.task(name="tests.sentinel")
def sentinel(token: str) -> None:
    print(f"SENTINEL {token}", flush=True)
