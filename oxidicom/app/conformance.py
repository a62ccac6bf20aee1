"""The DICOM Conformance Statement (PS3.2), generated from the code that it describes.

``python -m oxidicom.app.conformance > docs/conformance.md`` writes it; a test checks that
the committed document is exactly what this module produces, so that the SOP classes,
transfer syntaxes, statuses and defaults it states cannot drift from the ones the
receiver uses. The layout follows the template of PS3.2 Annex A.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from pydicom.charset import python_encoding
from pydicom.uid import UID_dictionary

from oxidicom.app.echo import DEFAULT_CALLING_AE_TITLE
from oxidicom.app.settings import SETTINGS, Setting
from oxidicom.dicom.uids import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    NEWER_TRANSFER_SYNTAXES,
    SIEMENS_PRIVATE_STORAGE_SOP_CLASSES,
    STORAGE_SOP_CLASSES,
    TRANSFER_SYNTAXES,
    UNCOMPRESSED_TRANSFER_SYNTAXES,
    VERIFICATION_SOP_CLASS,
)
from oxidicom.dicomweb.conformance import render_stow
from oxidicom.dimse.commands import Status
from oxidicom.storage.writer import StorageError
from oxidicom.ul.constants import RejectResult, RejectSource, UserRejectReason

#: Names of the private classes pydicom does not know (Siemens' own terms).
_PRIVATE_NAMES = {
    "1.3.12.2.1107.5.9.1": "Siemens CSA Non-Image Storage",
    "1.3.12.2.1107.5.99.3.10": "Siemens MR Spectroscopy Storage",
    "1.3.12.2.1107.5.99.3.11": "Siemens Syngo Non-Image Storage",
}

#: Every C-STORE / C-ECHO status the receiver sends (PS3.4 B.2.3, PS3.7 C).
STATUSES: tuple[tuple[int, str, str], ...] = (
    (Status.SUCCESS, "Success", "the file is at its final path (C-STORE); C-ECHO answered"),
    (
        Status.SOP_CLASS_NOT_SUPPORTED,
        "Refused: SOP Class not supported",
        "the C-STORE-RQ's Affected SOP Class UID is not the abstract syntax of its"
        " presentation context (not in promiscuous mode)",
    ),
    (
        Status.UNRECOGNIZED_OPERATION,
        "Refused: Unrecognized operation",
        "any DIMSE request other than C-STORE, C-ECHO and C-CANCEL; the association goes on",
    ),
    (
        StorageError.status,
        "Refused: Out of resources",
        "the file could not be written (disk full, I/O error), or the series'"
        " registration could not be recorded (first instance of a series in an association,"
        " outbox disk full or read-only); nothing is left behind",
    ),
    (
        Status.DATASET_DOES_NOT_MATCH_SOP_CLASS,
        "Error: Data Set does not match SOP Class",
        "the data set's SOPInstanceUID (0008,0018) or SOPClassUID (0008,0016) is not the"
        " C-STORE-RQ's Affected SOP Instance UID or Affected SOP Class UID (padding aside);"
        " nothing is stored; ErrorComment (0000,0902) names both. A data set without"
        " SOPClassUID is stored under the command's",
    ),
    (
        Status.CANNOT_UNDERSTAND,
        "Error: Cannot understand",
        "the data set cannot be decoded (PS3.5), or the C-STORE-RQ lacks its data set"
        " or its affected SOP UIDs",
    ),
    (
        Status.MISSING_REQUIRED_ATTRIBUTE,
        "Error: Cannot understand (missing or invalid attribute)",
        "StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID or PatientID is missing,"
        " one of those UIDs is longer than 1024 bytes, or StudyDate is not a date;"
        " ErrorComment (0000,0902) names it",
    ),
)

#: The settings that change what this document states.
_CONFORMANCE_SETTINGS = (
    "OXIDICOM_SCP_AET",
    "OXIDICOM_LISTENER_PORT",
    "OXIDICOM_LISTENER_ADDRESS",
    "OXIDICOM_SCP_MAX_PDU_LENGTH",
    "OXIDICOM_SCP_STRICT",
    "OXIDICOM_PDU_HARD_CAP",
    "OXIDICOM_LISTENER_THREADS",
    "OXIDICOM_MIN_TRANSFER_RATE",
    "OXIDICOM_MAX_ASSOCIATION_RATE",
    "OXIDICOM_SCP_PROMISCUOUS",
    "OXIDICOM_SCP_UNCOMPRESSED_ONLY",
    "OXIDICOM_ARTIM_TIMEOUT",
    "OXIDICOM_IDLE_TIMEOUT",
    "OXIDICOM_SCP_ALLOWED_PEERS",
    "OXIDICOM_SCP_CHECK_CALLED_AET",
)


def _setting(env: str) -> Setting:
    return next(s for s in SETTINGS if s.env == env)


def _default(env: str) -> str:
    setting = _setting(env)
    return setting.default_help or setting.default or ""


def uid_name(uid: str) -> str:
    """The PS3.6 name of a UID (pydicom's table), marked when retired."""
    if uid in _PRIVATE_NAMES:
        return _PRIVATE_NAMES[uid]
    if uid in NEWER_TRANSFER_SYNTAXES:
        return NEWER_TRANSFER_SYNTAXES[uid]
    name, _kind, _info, retired, *_ = UID_dictionary[uid]
    return f"{name} (retired)" if retired and "Retired" not in name else name


def _uid_rows(uids: Iterable[str]) -> list[str]:
    return [
        f"| {uid_name(uid)} | `{uid}` |" for uid in sorted(uids, key=lambda u: (uid_name(u), u))
    ]


def _tls_settings() -> list[Setting]:
    return [s for s in SETTINGS if "TLS" in s.env]


#: The access policy's rejections (oxidicom/scp/access.py): setting, when, PS3.8 reason.
ACCESS_REJECTIONS: tuple[tuple[str, str, UserRejectReason], ...] = (
    (
        "OXIDICOM_SCP_CHECK_CALLED_AET=true",
        "the called AE title is not `OXIDICOM_SCP_AET`",
        UserRejectReason.CALLED_AE_TITLE_NOT_RECOGNIZED,
    ),
    (
        "OXIDICOM_SCP_ALLOWED_PEERS",
        "the calling AE title is not listed, or is listed only for other hosts (addresses,"
        " CIDR networks, or host names resolved at start)",
        UserRejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED,
    ),
    (
        "OXIDICOM_TLS_CLIENT_AETS",
        "no identity of the TLS client certificate (subject CN, subjectAltName DNS names)"
        " is listed, or the calling AE title is not bound to it",
        UserRejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED,
    ),
)


def _access_table() -> str:
    rows = [
        "| Setting | Rejected when | A-ASSOCIATE-RJ result, source, reason |",
        "|---|---|---|",
    ]
    for setting, when, reason in ACCESS_REJECTIONS:
        name = reason.name.lower().replace("_", " ").replace(" ae ", " AE ")
        rows.append(
            f"| `{setting}` | {when} | permanent ({RejectResult.PERMANENT.value}),"
            f" service user ({RejectSource.SERVICE_USER.value}), {name} ({reason.value}) |"
        )
    return "\n".join(rows)


def render() -> str:
    """The whole conformance statement as Markdown."""
    aet = _default("OXIDICOM_SCP_AET")
    port = _default("OXIDICOM_LISTENER_PORT")
    max_pdu = _default("OXIDICOM_SCP_MAX_PDU_LENGTH")
    max_associations = _default("OXIDICOM_LISTENER_THREADS")
    hard_cap = _default("OXIDICOM_PDU_HARD_CAP")
    artim = _default("OXIDICOM_ARTIM_TIMEOUT")
    idle = _default("OXIDICOM_IDLE_TIMEOUT")
    min_rate = _default("OXIDICOM_MIN_TRANSFER_RATE")
    request_rate = _default("OXIDICOM_MAX_ASSOCIATION_RATE")
    standard = sorted(STORAGE_SOP_CLASSES - SIEMENS_PRIVATE_STORAGE_SOP_CLASSES)
    uncompressed = sorted(UNCOMPRESSED_TRANSFER_SYNTAXES, key=uid_name)
    charsets = sorted(term for term in python_encoding if term)
    tls = _tls_settings()
    out: list[str] = []
    add = out.append
    add(
        f"""<!-- Generated: python -m oxidicom.app.conformance; \
tests/app/test_conformance.py checks it -->
# oxidicom DICOM Conformance Statement

Implementation Class UID `{IMPLEMENTATION_CLASS_UID}`, Implementation Version Name
`{IMPLEMENTATION_VERSION_NAME}`. Laid out after the template of DICOM PS3.2 Annex A.

## 1 Conformance Statement Overview

oxidicom is a DICOM storage receiver for the ChRIS research platform. It accepts
associations from any DICOM application entity, receives composite instances with the
Storage Service Class (C-STORE, SCP role) and answers the Verification Service Class
(C-ECHO, SCP role). Each received instance is written unchanged, in the transfer syntax
it arrived in, as a DICOM Part-10 file in ChRIS's storage, and each received series is
then registered with ChRIS. Which AEs may associate is configurable (4.2.1.4); by
default any may. It never initiates associations, except for the separate
`oxidicom echo` command, a Verification SCU used for health checks.

| SOP Classes | User of Service (SCU) | Provider of Service (SCP) |
|---|---|---|
| Verification | Yes (`oxidicom echo` only) | Yes |
| Every Storage SOP Class of PS3.4 Table B.5-1 (Table 4.2-1 below) | No | Yes |
| Three private Siemens storage classes (Table 4.2-2) | No | Yes |
| DICOMweb Studies Store Transaction (STOW-RS, PS3.18 10.5; 4.2.3) | No | Yes, when enabled |

No Media Interchange is supported.

## 2 Table of Contents

1. Conformance Statement Overview
2. Table of Contents
3. Introduction
4. Networking: 4.1 Implementation Model, 4.2 AE Specifications, 4.3 Network Interfaces,
   4.4 Configuration
5. Media Interchange
6. Support of Character Sets
7. Security
8. Annexes

## 3 Introduction

### 3.1 Revision History

This document is generated from the source code of the version it ships with
(`python -m oxidicom.app.conformance`); it changes whenever the code changes what it states.

### 3.2 Audience

Hospital IT and PACS administrators who connect a PACS or modality to oxidicom, and
integrators of ChRIS.

### 3.3 Remarks

oxidicom stores what it receives; it does not interpret, display or transcode images.
Conformance of the sending application determines the content of the stored objects.

### 3.4 Terms, Definitions and Abbreviations

AE: Application Entity. AET: Application Entity Title. DIMSE: DICOM Message Service
Element. PDU: Protocol Data Unit. SCP/SCU: Service Class Provider/User. SOP:
Service-Object Pair. TLS: Transport Layer Security. ARTIM: Association Request/Reject/
Release Timer (PS3.8).

### 3.5 References

NEMA PS3 / ISO 12052, Digital Imaging and Communications in Medicine (DICOM), parts 2
(Conformance), 4 (Service Class Specifications), 5 (Data Structures and Encoding),
6 (Data Dictionary), 7 (Message Exchange), 8 (Network Communication Support) and 15
(Security Profiles).

## 4 Networking

### 4.1 Implementation Model

#### 4.1.1 Application Data Flow

A remote AE asks for an association and sends C-STORE requests; the **STORAGE-SCP** AE
(`{aet}` by default) writes each instance as a file under the folder of its series,
answers once the file is complete at its final path, and, once no association stores
into a series any more, registers it with ChRIS (a Celery task, over Redis or AMQP) and reports
progress over NATS. A C-ECHO request is answered at once.

```
Remote AE --C-STORE / C-ECHO--> STORAGE-SCP --files--> ChRIS storage
                                         \\--series registered--> ChRIS (CUBE)
```

#### 4.1.2 Functional Definition of AEs

**STORAGE-SCP** listens on TCP port {port} (configurable) and, by default, accepts any
calling and any called AE title; it answers with its own title. The operator can restrict
both (4.2.1.4). It runs until stopped; on
SIGTERM it stops accepting new associations and lets running ones finish (bounded time).

**ECHO-SCU** (`oxidicom echo`) opens one association, sends one C-ECHO and releases.

#### 4.1.3 Sequencing of Real-World Activities

A series is registered with ChRIS only after every association that carried it has ended
(A-RELEASE, A-ABORT or a lost connection), every file of it is at its final path, and
no association has stored into it for `OXIDICOM_SERIES_SETTLE` (2 s by default): a
series sent over several associations, one after the other or at once, is registered
once, whole. With `OXIDICOM_SERIES_SETTLE=0`, each association's part of a series is
registered when that association ends.

### 4.2 AE Specifications

#### 4.2.1 STORAGE-SCP

##### 4.2.1.1 SOP Classes

Table 4.2-1: standard SOP classes accepted, SCP role ({len(standard)} Storage SOP classes,
retired ones included, and Verification).

<!-- sop-classes -->
| SOP Class Name | SOP Class UID |
|---|---|
| {uid_name(VERIFICATION_SOP_CLASS)} | `{VERIFICATION_SOP_CLASS}` |
""".rstrip("\n")
    )
    out.extend(_uid_rows(standard))
    add("<!-- /sop-classes -->")
    add(
        """
Table 4.2-2: private SOP classes accepted, SCP role.

<!-- private-sop-classes -->
| SOP Class Name | SOP Class UID |
|---|---|"""
    )
    out.extend(_uid_rows(SIEMENS_PRIVATE_STORAGE_SOP_CLASSES))
    add("<!-- /private-sop-classes -->")
    add(
        f"""
With `OXIDICOM_SCP_PROMISCUOUS=true` any other abstract syntax is accepted as well and
stored the same way.

##### 4.2.1.2 Association Policies

**General.** The application context name is `1.2.840.10008.3.1.1.1` (DICOM). The
maximum PDU length offered is {max_pdu} bytes (`OXIDICOM_SCP_MAX_PDU_LENGTH`, 4096 to
16777216). A P-DATA-TF PDU longer than what was offered is accepted up to {hard_cap}
bytes (`OXIDICOM_PDU_HARD_CAP`), or refused with A-ABORT when `OXIDICOM_SCP_STRICT=true`.
At most 128 presentation contexts are accepted in one request.

**Number of Associations.** Up to {max_associations} concurrent associations per receiver
(`OXIDICOM_LISTENER_THREADS`). When all are running, a new request preempts the
running association that received least over the last 10 s, if that is less than
{min_rate} (`OXIDICOM_MIN_TRANSFER_RATE`; 0 disables it) and the association is at least
2 s old and not waiting for local storage; failing that, an association of the host
(network address) holding the most associations, if the requestor's host holds at least
two fewer (the slowest of those at least 2 s old; else, of the younger ones, the one
that received least; never one waiting for local storage). That association gets A-ABORT
(source service-user, 0), which drops only an instance not yet answered. Otherwise the
request is rejected with A-ASSOCIATE-RJ, result transient (2), source service-provider
presentation related (3), reason local limit exceeded (2), so that the sender can retry.
One network address may send association requests at {request_rate} at most (that many
at once, then that many per unit of time; `OXIDICOM_MAX_ASSOCIATION_RATE`, 0 disables
it); beyond, the request is rejected before any of the above with A-ASSOCIATE-RJ, result
transient (2), source service-provider presentation related (3), reason temporary
congestion (1).
A receiver runs several worker processes on a machine of several CPUs (`OXIDICOM_WORKERS`,
default auto; at most one per 4 of the associations above): each holds its part of the
associations, and a new connection goes to a worker with a free slot, else to one
running an association that the rate rule above would preempt, else to one where the
host rule above frees a slot, else to the least busy. The request rate and the host rule
count the whole receiver, across its workers. Replicas (several receivers serving one
service) each apply the limits in full.

**Asynchronous Nature.** Operations are performed one at a time. When the requestor
proposes an Asynchronous Operations Window, the answer is 1 invoked, 1 performed; when it
does not, none is sent (PS3.7 D.3.3.3).

**Implementation Identifying Information.**

| | |
|---|---|
| Implementation Class UID | `{IMPLEMENTATION_CLASS_UID}` |
| Implementation Version Name | `{IMPLEMENTATION_VERSION_NAME}` |

**Timers.** ARTIM {artim} (`OXIDICOM_ARTIM_TIMEOUT`): time for the A-ASSOCIATE-RQ after
connection, and for the peer to close after release or abort. An established association
must complete a PDU at least every {idle} (`OXIDICOM_IDLE_TIMEOUT`), else it is aborted.
While the requestor does not read the responses, nothing more is read from it, so no PDU
completes: after the same time the connection is closed.

##### 4.2.1.3 Association Initiation Policy

STORAGE-SCP never initiates associations.

##### 4.2.1.4 Association Acceptance Policy

By default any calling AE title, from any address, and any called AE title are
accepted; the A-ASSOCIATE-AC carries the configured AE title
(`OXIDICOM_SCP_AET`, default `{aet}`). The operator may restrict who associates; each
check is off unless set, and is made on the A-ASSOCIATE-RQ before the association counts
against the limit of 4.2.1.2:

Table 4.2-5: association rejections by access policy.

{_access_table()}

The called AE title is checked first, then the calling AE title and the peer's address,
then the certificate. AE titles are compared without their leading and trailing spaces
(PS3.5, VR AE) and are case-sensitive. An IPv4 peer seen as an IPv4-mapped IPv6 address
matches IPv4 entries.

SCP/SCU Role Selection items are answered with SCU role as proposed and SCP role refused;
SOP Class Extended Negotiation, Common Extended Negotiation and User Identity items are
accepted and not answered (no user identity is checked). An association is also rejected
when the protocol version or the application context is not DICOM's (permanent), or at
the limit of associations (transient, see 4.2.1.2).

###### Activity: Receive Storage Request

**Accepted Presentation Contexts.** Every SOP class of Tables 4.2-1 and 4.2-2 with every
transfer syntax of Table 4.2-3, SCP role, no extended negotiation. From the transfer
syntaxes the requestor proposes for a context, the first one (in its order of preference)
that is in Table 4.2-3 is accepted. With `OXIDICOM_SCP_UNCOMPRESSED_ONLY=true` only
{" and ".join(uid_name(u) for u in uncompressed)} are accepted.

Table 4.2-3: transfer syntaxes accepted ({len(TRANSFER_SYNTAXES)}; native and
encapsulated, retired ones included).

<!-- transfer-syntaxes -->
| Transfer Syntax Name | Transfer Syntax UID |
|---|---|"""
    )
    out.extend(_uid_rows(TRANSFER_SYNTAXES))
    add("<!-- /transfer-syntaxes -->")
    add(
        """
**SOP Specific Conformance for Storage SOP Classes.** oxidicom is a Level 2 (Full)
storage SCP in the sense of PS3.4 B.4.1: the data set is stored exactly as received
(all elements, private ones included, in the negotiated transfer syntax, never
transcoded), as a Part-10 file with file meta information, and a success status is
returned only once the file is complete at its final path. Files are not deleted by
oxidicom; ChRIS manages them. The storage path is built from the calling AE title,
PatientID, PatientName, PatientBirthDate, StudyDescription, AccessionNumber, StudyDate,
SeriesNumber, SeriesDescription, SeriesInstanceUID, InstanceNumber and
SOPInstanceUID; the first five required attributes below must be present. An instance
sent again replaces the earlier file. A refused instance does not end the association.

Table 4.2-4: C-STORE response statuses.

<!-- statuses -->
| Status | Meaning | When |
|---|---|---|"""
    )
    for status, meaning, when in STATUSES:
        add(f"| `{status:04X}` | {meaning} | {when} |")
    add("<!-- /statuses -->")
    add(
        f"""
###### Activity: Verification

C-ECHO on a Verification presentation context (implicit VR little endian, or any
transfer syntax of Table 4.2-3) is answered with status `0000`.

#### 4.2.2 ECHO-SCU (`oxidicom echo`)

Proposes one presentation context, Verification with Implicit VR Little Endian, calling AE
title `{DEFAULT_CALLING_AE_TITLE}` unless `--aet` says otherwise, maximum PDU length
16384; sends one C-ECHO-RQ and A-RELEASE-RQ. It succeeds (exit status 0) only when the
answer is status `0000`. It accepts no associations. A STORAGE-SCP with
`OXIDICOM_SCP_ALLOWED_PEERS` set admits it only when that list has its AE title and
address (`{DEFAULT_CALLING_AE_TITLE}@127.0.0.1` for the default health check).
{render_stow(_default)}
### 4.3 Network Interfaces

#### 4.3.1 Physical Network Interface

Whatever the host offers; oxidicom uses TCP/IP through the operating system (PS3.8).

#### 4.3.2 Additional Protocols

None required. Registrations go to ChRIS's Celery broker (the Redis protocol, as Redis
or DragonflyDB speak it, or AMQP) and progress messages over NATS;
traces and metrics optionally to an OpenTelemetry collector (OTLP over HTTP).

#### 4.3.3 IPv4 and IPv6 Support

Both: `OXIDICOM_LISTENER_ADDRESS` chooses the address to listen on (default
`{_default("OXIDICOM_LISTENER_ADDRESS")}`, every IPv4 address; `::` for IPv6).

### 4.4 Configuration

#### 4.4.1 AE Title/Presentation Address Mapping

The local AE title is `OXIDICOM_SCP_AET` (default `{aet}`), the port
`OXIDICOM_LISTENER_PORT` (default {port}). Remote AEs need not be configured: by
default any remote AE may store. `OXIDICOM_SCP_ALLOWED_PEERS` lists the remote AE titles
that may, each with the hosts it may call from (`AET` or `AET@HOST`, comma-separated);
their ports are not configured, since STORAGE-SCP never calls them.

#### 4.4.2 Parameters

Table 4.4-1: settings that change this statement (environment variables).

| Setting | Default | Effect |
|---|---|---|"""
    )
    for env in _CONFORMANCE_SETTINGS:
        add(f"| `{env}` | `{_default(env)}` | {_setting(env).help} |")
    add(
        """
## 5 Media Interchange

Not supported.

## 6 Support of Character Sets

The data set is stored byte for byte, so instances in any character set are accepted
and stored unchanged. Only the text values that name the storage folders and the ChRIS
registration (PatientName, PatientID, StudyDescription, SeriesDescription,
AccessionNumber, ...) are decoded, with the instance's Specific Character Set (0008,0005)
and code extension techniques (PS3.5 6.1). Without it, or with the default repertoire,
values are read as ISO-IR 6 (a byte outside it is taken as ISO-IR 100). These defined
terms are decoded:

"""
        + ", ".join(f"`{term}`" for term in charsets)
        + """.

A value that a named character set cannot decode is replaced character by character,
never refused. Folder names keep only `A-Z a-z 0-9 . -` (other characters become `_`).

## 7 Security

### 7.1 Security Profiles
"""
    )
    if tls:
        add(
            "The Basic TLS Secure Transport Connection Profile (PS3.15 B.1) is supported;"
            " these settings control it:\n"
        )
        for setting in tls:
            add(f"- `{setting.env}` (default `{setting.default_help or setting.default}`):")
            add(f"  {setting.help}")
    else:
        add(
            "oxidicom itself accepts plain TCP only. For the Basic TLS Secure Transport"
            " Connection Profile (PS3.15 B.1), terminate TLS in front of it (a TLS proxy or"
            " the platform's ingress)."
        )
    add(
        """
### 7.2 Association Level Security

By default none: any AE may associate and store. With the settings of Table 4.2-5, only
listed calling AE titles, from their listed hosts, and, over TLS, only with a client
certificate bound to that AE title, may associate; every rejection is logged with the
peer's address. AE titles and addresses can be claimed by any device on the network; only
the certificate binding is proof. User Identity negotiation is not checked. Deploy
oxidicom on a network reachable only by trusted PACS and modalities.

### 7.3 Application Level Security

No patient data is written to the logs above DEBUG level (logs name UIDs and AE titles).

## 8 Annexes

### 8.1 IOD Contents

oxidicom creates no SOP instances; it stores the instances it receives unchanged.

### 8.2 Data Dictionary of Private Attributes

None defined.

### 8.3 Coded Terminology and Templates

None used.

### 8.4 Standard Extended / Specialized / Private SOP Classes

Private storage SOP classes: Table 4.2-2; stored like any other.

### 8.5 Private Transfer Syntaxes

None."""
    )
    return "\n".join(out) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
