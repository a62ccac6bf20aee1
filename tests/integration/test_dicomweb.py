"""STOW-RS against the real receiver process: real clients, real failures, real registrations.

Clients: dicomweb-client (PyPI), curl with a multipart body made by hand, and Orthanc's
DICOMweb plugin pushing a study with its STOW client. Each test checks what a C-STORE test
checks: the files at their CUBE paths, nothing partial on disk, the registrations in the
outbox (no broker configured: they stay there, readable).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pydicom
import pytest

from tests.dicom_factory import mr_instance
from tests.dicomweb_helpers import multipart, part10
from tests.integration.conftest import IN_CI, require_tool
from tests.integration.dicomweb import (
    StowReceiver,
    post,
    referenced_and_failed,
    start_stow_receiver,
)
from tests.integration.many_series import memory_kib
from tests.integration.orthanc import Orthanc
from tests.integration.services import (
    NATS_URL,
    assert_progress_contract,
    lonk_collector,
    ndicom_by_series,
    outbox_entries,
)
from tests.integration.tls_certs import make_ca, make_leaf
from tests.sample_data import (
    EXPECTED_TASKS,
    PACS,
    SAG_UID,
    STRUCTURAL_UID,
    require_sample_data,
)

pytestmark = pytest.mark.integration

CURL = "/usr/bin/curl"
ORTHANC_DICOMWEB = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
MIB = 1024 * 1024


@pytest.fixture
def stow(tmp_path: Path) -> Iterator[StowReceiver]:
    running = start_stow_receiver(tmp_path / "rx", {"OXIDICOM_FSYNC": "false"})
    yield running
    assert running.receiver.stop() == 0


def expected_task(series_uid: str, pacs_name: str) -> dict[str, object]:
    """The registration of a sample series, sent as ``pacs_name`` instead of over DIMSE."""
    task = dict(EXPECTED_TASKS[series_uid])
    task["pacs_name"] = pacs_name
    task["path"] = str(task["path"]).replace(f"/{PACS}/", f"/{pacs_name}/")
    return task


def registrations(stow: StowReceiver) -> list[dict[str, object]]:
    return [entry["kwargs"] for entry in outbox_entries(stow.receiver.outbox_dir)]


# -- dicomweb-client --------------------------------------------------------------------


def test_dicomweb_client_stores_both_sample_series(stow: StowReceiver) -> None:
    from dicomweb_client.api import DICOMwebClient

    data = require_sample_data()
    client = DICOMwebClient(stow.base)
    sources = {}
    for folder in ("SAG-anon", "example-dicom-structural"):
        paths = sorted((data / folder).rglob("*.dcm"))
        datasets = [pydicom.dcmread(p) for p in paths]
        sources.update({ds.SOPInstanceUID: p for ds, p in zip(datasets, paths, strict=True)})
        answer = client.store_instances(datasets)  # one request per series
        assert len(answer.ReferencedSOPSequence) == len(paths)
        assert "FailedSOPSequence" not in answer
    stored = stow.stored_files()
    assert len(stored) == 192 + 384
    stow.wait_registrations(2)
    tasks = {task["SeriesInstanceUID"]: task for task in registrations(stow)}
    assert tasks == {
        SAG_UID: expected_task(SAG_UID, "DICOMWEB"),
        STRUCTURAL_UID: expected_task(STRUCTURAL_UID, "DICOMWEB"),
    }
    # The data set as sent, byte for byte after the file meta, as for C-STORE.
    for path in stored[:3] + stored[-3:]:
        copy = pydicom.dcmread(path)
        original = pydicom.dcmread(sources[copy.SOPInstanceUID])
        assert copy.file_meta.SourceApplicationEntityTitle == "DICOMWEB"
        assert copy == original
    assert stow.temporary_files() == []


def test_a_series_sent_in_two_requests_is_registered_once_whole(stow: StowReceiver) -> None:
    """A client that splits a series over requests (Orthanc's STOW client splits large
    studies): one registration of the whole series, as for associations."""
    from dicomweb_client.api import DICOMwebClient

    paths = sorted((require_sample_data() / "SAG-anon").glob("*.dcm"))
    client = DICOMwebClient(stow.base)
    for half in (paths[:96], paths[96:]):
        answer = client.store_instances([pydicom.dcmread(p) for p in half])
        assert len(answer.ReferencedSOPSequence) == 96
    stow.wait_registrations(1)
    assert stow.receiver.stop() == 0  # settles whatever is left: nothing more comes
    assert ndicom_by_series(registrations(stow)) == {("DICOMWEB", SAG_UID): [192]}


# -- curl and hand-made bodies ----------------------------------------------------------


def curl(
    stow: StowReceiver, path: str, body: bytes, content_type: str, *args: str
) -> tuple[int, dict[str, str], bytes]:
    """POST with curl; (status, headers, body)."""
    require_tool(CURL)
    done = subprocess.run(
        [
            CURL,
            "--silent",
            "--show-error",
            "--include",
            "--data-binary",
            "@-",
            "-H",
            f"Content-Type: {content_type}",
            *args,
            f"{stow.base}{path}",
        ],
        input=body,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    raw = done.stdout
    # Skip "100 Continue" interim responses (curl sends Expect: 100-continue for big bodies).
    while raw.startswith(b"HTTP/1.1 100"):
        raw = raw.split(b"\r\n\r\n", 1)[1]
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, payload


def test_curl_one_good_part_and_one_that_is_not_part10_gets_202(stow: StowReceiver) -> None:
    good = mr_instance()
    body, content_type = multipart([part10(good), b"just some bytes, not DICOM"])
    status, headers, payload = curl(stow, "/studies", body, content_type)
    assert status == 202, payload
    assert headers["content-type"] == "application/dicom+json"
    stored, failed = referenced_and_failed(json.loads(payload))
    assert stored == [good.SOPInstanceUID]
    assert failed == [0xC000]
    assert len(stow.stored_files()) == 1 and stow.temporary_files() == []
    stow.wait_registrations(1)
    [task] = registrations(stow)
    assert (task["pacs_name"], task["ndicom"]) == ("DICOMWEB", 1)


def test_curl_nothing_storable_gets_409_and_leaves_nothing(stow: StowReceiver) -> None:
    body, content_type = multipart([part10(mr_instance(PatientID=None))])
    status, _, payload = curl(stow, "/studies", body, content_type)
    assert status == 409
    assert referenced_and_failed(json.loads(payload)) == ([], [0xC001])
    assert stow.stored_files() == [] and stow.temporary_files() == []


def test_instance_of_another_study_than_the_path_fails_alone(stow: StowReceiver) -> None:
    ours, theirs = mr_instance(), mr_instance(StudyInstanceUID="1.2.3.999")
    body, content_type = multipart([part10(ours), part10(theirs)])
    status, _, payload = curl(stow, f"/studies/{ours.StudyInstanceUID}", body, content_type)
    assert status == 202
    assert referenced_and_failed(json.loads(payload)) == ([ours.SOPInstanceUID], [0xC409])
    assert len(stow.stored_files()) == 1


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/dicom", 415),
        ('multipart/related; type="application/dicom+xml"; boundary=x', 415),
        ('multipart/related; type="application/dicom"', 400),
    ],
)
def test_bodies_we_do_not_take(stow: StowReceiver, content_type: str, status: int) -> None:
    got, _, _ = curl(stow, "/studies", part10(mr_instance()), content_type)
    assert got == status
    assert stow.stored_files() == []


def test_a_broken_multipart_body_gets_400(stow: StowReceiver) -> None:
    body, content_type = multipart([part10(mr_instance())], boundary="right")
    got, _, _ = curl(stow, "/studies", body.replace(b"--right", b"--wrong"), content_type)
    assert got == 400
    assert stow.stored_files() == []


def test_a_nested_multipart_part_gets_400(stow: StowReceiver) -> None:
    inner = b"--inner\r\nContent-Type: application/dicom\r\n\r\nx\r\n--inner--\r\n"
    body = (
        b"--outer\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n"
        + inner
        + b"\r\n--outer--\r\n"
    )
    content_type = 'multipart/related; type="application/dicom"; boundary=outer'
    got, _, payload = curl(stow, "/studies", body, content_type)
    assert got == 400 and b"itself multipart" in payload


def test_a_request_over_the_limit_gets_413_and_nothing_is_stored(tmp_path: Path) -> None:
    running = start_stow_receiver(tmp_path, {"OXIDICOM_DICOMWEB_MAX_REQUEST_SIZE": "1MiB"})
    try:
        body, content_type = multipart([part10(mr_instance(rows=1024, columns=1024))])  # 2 MiB
        got, _, _ = curl(running, "/studies", body, content_type)
        assert got == 413
        # Chunked (no Content-Length): found out while streaming, the part is dropped.
        got, _, _ = curl(
            running, "/studies", body, content_type, "-H", "Transfer-Encoding: chunked"
        )
        assert got == 413
        running.receiver.wait_for_log(r"STOW-RS request ended \(the request body is larger")
        assert running.stored_files() == []
        # The dropped part's file goes in the background; a clean stop waits for it.
        assert running.receiver.stop() == 0
        assert running.temporary_files() == []
    finally:
        assert running.receiver.stop() == 0


# -- authentication ---------------------------------------------------------------------


def test_basic_users_store_under_their_own_name(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(f"LABPACS:{bcrypt.hashpw(b'right', bcrypt.gensalt(6)).decode()}\n")
    running = start_stow_receiver(tmp_path / "rx", {"OXIDICOM_DICOMWEB_USERS_FILE": str(users)})
    try:
        body, content_type = multipart([part10(mr_instance())])
        status, headers, _ = curl(running, "/studies", body, content_type)
        assert status == 401
        assert headers["www-authenticate"].startswith('Basic realm="oxidicom"')
        status, _, _ = curl(running, "/studies", body, content_type, "-u", "LABPACS:wrong")
        assert status == 401
        assert running.stored_files() == []
        status, _, _ = curl(running, "/studies", body, content_type, "-u", "LABPACS:right")
        assert status == 200
        [path] = running.stored_files()
        assert "/SERVICES/PACS/LABPACS/" in str(path)
        running.wait_registrations(1)
        [task] = registrations(running)
        assert task["pacs_name"] == "LABPACS"
    finally:
        assert running.receiver.stop() == 0


# -- a client that goes away ------------------------------------------------------------


def test_a_client_gone_mid_part_leaves_no_partial_file_and_registers_the_rest(
    stow: StowReceiver,
) -> None:
    first = mr_instance(instance_number=1)
    second = part10(mr_instance(instance_number=2, rows=2048, columns=2048))  # 8 MiB
    body, content_type = multipart([part10(first), second], boundary="cut")
    cut = body.index(second) + len(second) // 2  # past the 4 MiB the writer gathers
    with socket.create_connection(("127.0.0.1", stow.http_port)) as sock:
        head = (
            f"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:cut])
        stow.receiver.wait_for_log(r"\[.*\] STOW-RS request from")
    # The connection is closed inside the second part.
    stow.receiver.wait_for_log(r"STOW-RS request ended \(the client went away\): 1 stored")
    stow.wait_registrations(1)
    [path] = stow.stored_files()
    assert first.SOPInstanceUID in path.name
    [task] = registrations(stow)
    assert task["ndicom"] == 1
    # The abandoned file is removed in the background (as for an aborted association); a
    # clean stop waits for that work, and leaves the temporary folder only when empty.
    assert stow.receiver.stop() == 0
    assert stow.temporary_files() == []


# -- memory -----------------------------------------------------------------------------


def big_part10(path: Path, pixel_bytes: int) -> int:
    """A Part-10 file whose PixelData is ``pixel_bytes`` long, written without holding it."""
    ds = mr_instance(rows=512, columns=512, frames=pixel_bytes // (512 * 512 * 2))
    del ds.PixelData
    header = part10(ds)
    with path.open("wb") as out:
        out.write(header)
        out.write(b"\xe0\x7f\x10\x00OW\x00\x00" + pixel_bytes.to_bytes(4, "little"))
        block = bytes(range(256)) * 4096  # 1 MiB
        for _ in range(pixel_bytes // len(block)):
            out.write(block)
    return path.stat().st_size


def test_a_256_mib_part_keeps_the_receiver_under_64_mib(tmp_path: Path) -> None:
    source = tmp_path / "big.dcm"
    size = big_part10(source, 256 * MIB)
    running = start_stow_receiver(tmp_path / "rx")
    try:
        boundary = "big-part-boundary"
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        head = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def chunks() -> Iterator[bytes]:
            yield head
            with source.open("rb") as f:
                while block := f.read(MIB):
                    yield block
            yield tail

        # A small request first: what the first request loads is not the part's doing.
        small, small_type = multipart([part10(mr_instance())])
        warm = post(running.http_port, "/dicom-web/studies", small, {"Content-Type": small_type})
        assert warm.status == 200
        length = len(head) + size + len(tail)
        answer = post(
            running.http_port,
            "/dicom-web/studies",
            chunks(),
            {"Content-Type": content_type, "Content-Length": str(length)},
        )
        assert answer.status == 200, answer.body
        sizes = sorted(p.stat().st_size for p in running.stored_files())
        assert len(sizes) == 2 and sizes[-1] >= 256 * MIB
        peak = max(memory_kib(pid)["VmHWM"] for pid in running.receiver.serving_pids())
        assert peak < 64 * 1024, f"peak RSS {peak / 1024:.1f} MiB for a 256 MiB part"
    finally:
        assert running.receiver.stop() == 0


# -- Orthanc's STOW client --------------------------------------------------------------


def require_plugin(path: str) -> None:
    """An Orthanc plugin (a library, not a program); skip (fail under CI) when absent."""
    if not Path(path).exists():
        message = f"{path} is not installed (apt-get install orthanc-dicomweb)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def test_orthanc_pushes_a_study_with_its_stow_client(tmp_path: Path) -> None:
    require_plugin(ORTHANC_DICOMWEB)
    data = require_sample_data()
    running = start_stow_receiver(tmp_path / "rx", {"OXIDICOM_FSYNC": "false"})
    orthanc = Orthanc(
        tmp_path / "orthanc",
        "OXITESTORTHANC",
        running.receiver.port,
        {
            "Plugins": [ORTHANC_DICOMWEB],
            "DicomWeb": {
                "Enable": True,
                "Servers": {"oxidicom": [f"{running.base}/"]},
            },
        },
    )
    try:
        orthanc.upload(sorted((data / "SAG-anon").glob("*.dcm")))
        series = orthanc.request("GET", f"/series/{orthanc.series_id(SAG_UID)}")
        body = json.dumps({"Resources": [series["ParentStudy"]], "Synchronous": True}).encode()
        orthanc.request("POST", "/dicom-web/servers/oxidicom/stow", body, timeout=300)
        assert len(running.stored_files()) == 192
        running.receiver.wait_for_log(r"STOW-RS request ended")
        ended = [
            line for line in running.receiver.log().splitlines() if "STOW-RS request ended" in line
        ]
        running.wait_registrations(len(ended))
        # Orthanc may split a study over several requests: each is registered as an
        # association would be, and together they count every file once.
        by_series = ndicom_by_series(registrations(running))
        assert sum(by_series[("DICOMWEB", SAG_UID)]) == 192
        assert running.temporary_files() == []
    finally:
        orthanc.stop()
        assert running.receiver.stop() == 0


def test_bearer_token_over_https_with_the_dicom_tls_certificate(tmp_path: Path) -> None:
    require_tool(CURL)
    ca = make_ca(tmp_path / "certs", "test-ca")
    server = make_leaf(ca, tmp_path / "certs", "server", server=True)
    token = "f" * 40
    (tmp_path / "token").write_text(token + "\n")
    running = start_stow_receiver(
        tmp_path / "rx",
        {
            "OXIDICOM_TLS_CERTIFICATE": str(server.cert),
            "OXIDICOM_TLS_KEY": str(server.key),
            "OXIDICOM_DICOMWEB_TOKEN_FILE": str(tmp_path / "token"),
        },
    )
    try:
        body, content_type = multipart([part10(mr_instance())])
        url = f"https://localhost:{running.http_port}/dicom-web/studies"
        command = [
            CURL, "--silent", "--cacert", str(ca.cert), "-o", "/dev/null",
            "-w", "%{http_code}", "--data-binary", "@-", "-H", f"Content-Type: {content_type}",
        ]  # fmt: skip
        refused = subprocess.run([*command, url], input=body, capture_output=True, timeout=60)
        assert refused.stdout == b"401", refused.stderr
        bearer = ["-H", f"Authorization: Bearer {token}"]
        done = subprocess.run([*command, *bearer, url], input=body, capture_output=True, timeout=60)
        assert done.stdout == b"200", done.stderr
        [path] = running.stored_files()
        assert "/SERVICES/PACS/DICOMWEB/" in str(path)
    finally:
        assert running.receiver.stop() == 0


# -- LONK progress and a graceful stop ---------------------------------------------------


async def test_lonk_progress_and_done_per_request_and_an_error_for_a_bad_part(
    tmp_path: Path,
) -> None:
    async with lonk_collector() as lonk:
        env = {"OXIDICOM_NATS_ADDRESS": NATS_URL, "OXIDICOM_ROOT_SUBJECT": lonk.root_subject}
        running = await asyncio.to_thread(start_stow_receiver, tmp_path, env)
        try:
            series = mr_instance().SeriesInstanceUID
            parts = [part10(mr_instance(instance_number=n)) for n in (1, 2, 3)]
            body, content_type = multipart([*parts, b"not a DICOM file"])
            answer = await asyncio.to_thread(
                post, running.http_port, "/dicom-web/studies", body, {"Content-Type": content_type}
            )
            assert answer.status == 202
            subject = lonk.subject("DICOMWEB", series)
            unknown = lonk.subject("DICOMWEB", "UNKNOWN")
            await lonk.wait_until(lambda: "done" in lonk.decoded(subject))
            await lonk.settle()
            assert_progress_contract(lonk.decoded(subject), 3)
            [error] = lonk.decoded(unknown)
            assert error.startswith("error:") and "Part-10" in error
        finally:
            assert await asyncio.to_thread(running.receiver.stop) == 0


def test_sigterm_lets_a_running_request_finish(stow: StowReceiver) -> None:
    parts = [part10(mr_instance(instance_number=n)) for n in (1, 2)]
    body, content_type = multipart(parts, boundary="stop")
    half = body.index(parts[1])
    with socket.create_connection(("127.0.0.1", stow.http_port)) as sock:
        head = (
            f"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[:half])
        stow.receiver.wait_for_log(r"STOW-RS request from")
        stow.receiver.process.send_signal(signal.SIGTERM)
        stow.receiver.wait_for_log(r"stopping: no new associations")
        sock.sendall(body[half:])
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), (answer[:200], stow.receiver.log())
    assert stow.receiver.process.wait(60) == 0
    assert len(stow.stored_files()) == 2
    [entry] = outbox_entries(stow.receiver.outbox_dir)
    assert entry["kwargs"]["ndicom"] == 2


def test_more_requests_than_slots_get_503_with_retry_after(tmp_path: Path) -> None:
    running = start_stow_receiver(tmp_path, {"OXIDICOM_LISTENER_THREADS": "1"})
    try:
        body, content_type = multipart([part10(mr_instance())], boundary="slot")
        with socket.create_connection(("127.0.0.1", running.http_port)) as sock:
            head = (
                f"POST /dicom-web/studies HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body[:200])  # holds the only slot, mid-body
            running.receiver.wait_for_log(r"STOW-RS request from")
            busy = post(
                running.http_port, "/dicom-web/studies", body, {"Content-Type": content_type}
            )
            assert busy.status == 503 and busy.headers["retry-after"] == "1"
            sock.sendall(body[200:])
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        again = post(running.http_port, "/dicom-web/studies", body, {"Content-Type": content_type})
        assert again.status == 200  # the slot is free again
    finally:
        assert running.receiver.stop() == 0
