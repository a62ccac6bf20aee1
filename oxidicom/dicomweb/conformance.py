"""The STOW-RS section of the conformance statement (PS3.2 Annex J style), from the code.

:mod:`oxidicom.app.conformance` puts it in the statement; every status and default here is
read from the module that uses it, so the document cannot drift from the service.
"""

from __future__ import annotations

from collections.abc import Callable

from oxidicom.dicomweb.auth import CACHE_SECONDS, MAX_PENDING, MIN_TOKEN_LENGTH
from oxidicom.dicomweb.ingest import (
    REFERENCED_SOP_CLASS_NOT_SUPPORTED,
    REFERENCED_TRANSFER_SYNTAX_NOT_SUPPORTED,
    STUDY_INSTANCE_UID_MISMATCH,
)
from oxidicom.dicomweb.meta import MAX_META_LENGTH
from oxidicom.dicomweb.multipart import MAX_BOUNDARY
from oxidicom.dimse.commands import Status
from oxidicom.storage.writer import StorageError

#: FailureReason (0008,1197) values sent, with PS3.18 Table I.2-2's meaning and when.
FAILURE_REASONS: tuple[tuple[int, str, str], ...] = (
    (
        StorageError.status,
        "Refused: Out of Resources",
        "the file could not be written, or the series' registration could not be recorded",
    ),
    (
        Status.DATASET_DOES_NOT_MATCH_SOP_CLASS,
        "Error: Data Set does not match SOP Class",
        "the data set's SOPInstanceUID or SOPClassUID is not the one its file meta names",
    ),
    (
        Status.CANNOT_UNDERSTAND,
        "Error: Cannot understand",
        "the part is not a Part-10 file (no preamble and `DICM`, no file meta, file meta"
        f" over {MAX_META_LENGTH} bytes), is of another media type than application/dicom,"
        " or its data set cannot be decoded",
    ),
    (
        Status.MISSING_REQUIRED_ATTRIBUTE,
        "Error: Cannot understand (implementation specific)",
        "StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID or PatientID is missing, or"
        " StudyDate is not a date (as for C-STORE)",
    ),
    (
        REFERENCED_TRANSFER_SYNTAX_NOT_SUPPORTED,
        "Referenced Transfer Syntax not supported",
        "the file meta's transfer syntax is not in Table 4.2-3 (or not uncompressed, with"
        " `OXIDICOM_SCP_UNCOMPRESSED_ONLY=true`)",
    ),
    (
        REFERENCED_SOP_CLASS_NOT_SUPPORTED,
        "Referenced SOP Class not supported",
        "the SOP class is not a storage SOP class of Table 4.2-1 or 4.2-2 (unless"
        " `OXIDICOM_SCP_PROMISCUOUS=true`)",
    ),
    (
        STUDY_INSTANCE_UID_MISMATCH,
        "Error: Cannot understand (implementation specific)",
        "the request's path names a study (`/studies/{StudyInstanceUID}`) and the"
        " instance belongs to another",
    ),
    (0x0110, "Processing failure", "an internal error (a bug); logged with its traceback"),
)

HTTP_STATUSES: tuple[tuple[int, str], ...] = (
    (200, "every part was stored"),
    (202, "some parts were stored, others failed (FailedSOPSequence says which and why)"),
    (400, "the multipart body is malformed or has no part, or the path's study UID is not a UID"),
    (401, "authentication is on and the credentials are missing or wrong (WWW-Authenticate)"),
    (408, "no byte of the body arrived for `OXIDICOM_IDLE_TIMEOUT`"),
    (409, "no part was stored (FailedSOPSequence says why)"),
    (413, "the body is larger than `OXIDICOM_DICOMWEB_MAX_REQUEST_SIZE`"),
    (
        415,
        "the Content-Type is not multipart/related, or its `type` is not application/dicom",
    ),
    (
        503,
        f"stopping, `OXIDICOM_LISTENER_THREADS` requests already running, or {MAX_PENDING}"
        " password checks waiting (Retry-After)",
    ),
)


def render_stow(default: Callable[[str], str]) -> str:
    """Section 4.2.3 of the statement; ``default(env)`` gives a setting's default."""
    rows = "\n".join(
        f"| `{code:04X}` | {meaning} | {when} |" for code, meaning, when in FAILURE_REASONS
    )
    statuses = "\n".join(f"| {code} | {when} |" for code, when in HTTP_STATUSES)
    return f"""
#### 4.2.3 STOW-RS origin server (DICOMweb Studies Store Transaction)

Off unless `OXIDICOM_DICOMWEB_PORT` is set. It implements the Store Transaction of
PS3.18 10.5 and nothing else of PS3.18 (no retrieve, search, or worklist services):

- `POST /dicom-web/studies` and `POST /dicom-web/studies/{{StudyInstanceUID}}`, over
  HTTP/1.1, on `OXIDICOM_DICOMWEB_ADDRESS` (default `{default("OXIDICOM_DICOMWEB_ADDRESS")}`)
  and `OXIDICOM_DICOMWEB_PORT`; HTTPS with the certificate of the DICOM TLS listener (7.1).
- Request payload: `multipart/related; type="application/dicom"` (a missing `type`
  is tolerated), each part one PS3.10 file. Boundaries of up to {MAX_BOUNDARY} characters
  are read (RFC 2046 says 70; Orthanc's client sends 73). The metadata-and-bulk-data forms
  (`application/dicom+json`, `application/dicom+xml`) are not supported.
- Response payload: the Store Instances Response Module (PS3.18 Annex I) as
  `application/dicom+json`, whatever the Accept header says. RetrieveURL (0008,1190) is
  sent empty (type 2): no Retrieve Transaction is offered. No WarningReason is sent:
  nothing is coerced.
- SOP classes and transfer syntaxes: those of Tables 4.2-1 to 4.2-3, under the same
  settings. Each instance is stored as by C-STORE (4.2.1.3): the data set byte for byte
  after a file meta of our own, whose Source AE Title (0002,0016) and the storage folder
  `{{pacs}}` are the name of the authenticated user, or else
  `OXIDICOM_DICOMWEB_PACS_NAME` (default `{default("OXIDICOM_DICOMWEB_PACS_NAME")}`).
- One request is what one association is for C-STORE: its series are registered with
  ChRIS, and their progress reported, when the request ends, also when the client goes
  away mid-body (what was stored by then is registered; the unfinished part is dropped).
- Parts are stored one after the other, in order; one part's failure never stops the
  next.

HTTP status codes (PS3.18 Table 10.5.3-1):

| Status | When |
|---|---|
{statuses}

FailureReason (0008,1197) values (PS3.18 Table I.2-2; `C001` and `C409` are ours, in the
"cannot understand" class):

| Value | Meaning | When |
|---|---|---|
{rows}

Security: HTTP Basic authentication against `OXIDICOM_DICOMWEB_USERS_FILE` (bcrypt or
argon2 hashes; a verified password is remembered for {CACHE_SECONDS:g} s, hashed with a
per-process key), or a bearer token of at least {MIN_TOKEN_LENGTH} characters from
`OXIDICOM_DICOMWEB_TOKEN_FILE`. Without either, the listener starts only on a loopback
address, or with `OXIDICOM_DICOMWEB_ALLOW_ANONYMOUS=true`.
"""
