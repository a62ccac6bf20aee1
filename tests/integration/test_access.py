"""Access control against the real receiver: who may associate, answered on the raw PDU.

OXIDICOM_SCP_ALLOWED_PEERS, OXIDICOM_SCP_CHECK_CALLED_AET and OXIDICOM_TLS_CLIENT_AETS;
dcmtk's storescu/echoscu as the real peers, a raw socket where the answer's fields or
the source address matter (storescu cannot bind one; a socket can bind 127.0.0.2).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxidicom.ul import pdu as ul
from oxidicom.ul.constants import RejectResult, RejectSource, UserRejectReason
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.conftest import ECHOSCU, echoscu, require_tool
from tests.integration.raw_peer import READ_TIMEOUT, RawPeer, associate_rq
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.test_echo_command import oxidicom_echo
from tests.integration.test_tls import Pki, pki, tls_env, tls_peer  # noqa: F401 (fixture)
from tests.integration.tls_certs import make_leaf

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"
CALLING_NOT_RECOGNIZED = ul.AssociateRJ(
    RejectResult.PERMANENT,
    RejectSource.SERVICE_USER,
    UserRejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED,
)
CALLED_NOT_RECOGNIZED = ul.AssociateRJ(
    RejectResult.PERMANENT,
    RejectSource.SERVICE_USER,
    UserRejectReason.CALLED_AE_TITLE_NOT_RECOGNIZED,
)


@pytest.fixture
def guarded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningReceiver]:
    running = start_receiver(tmp_path, request.param)
    yield running
    assert running.stop() == 0
    assert "Traceback" not in running.log()


def storescu(port: int, calling: str, *files: Path) -> subprocess.CompletedProcess[str]:
    require_tool(STORESCU)
    return subprocess.run(
        [STORESCU, "-aet", calling, "-aec", "ChRIS", "127.0.0.1", str(port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def connect_from(source: str, port: int) -> RawPeer:
    """A raw peer whose connection comes from ``source`` (any 127.x address is local)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(READ_TIMEOUT)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return RawPeer(sock)


def answer_to(peer: RawPeer, request: bytes) -> ul.PDU | None:
    """Send one A-ASSOCIATE-RQ and read the answer; after an RJ the receiver closes."""
    with peer:
        peer.send(request)
        answer = peer.read_pdu()
        if isinstance(answer, ul.AssociateRJ):
            assert peer.read_pdu() is None
        return answer


def called_rq(called: str, calling: str = "RAWPEER") -> bytes:
    request = ul.parse_pdu(associate_rq(calling))
    assert isinstance(request, ul.AssociateRQ)
    return ul.encode(
        ul.AssociateRQ(
            called_ae_title=called,
            calling_ae_title=request.calling_ae_title,
            application_context=request.application_context,
            presentation_contexts=request.presentation_contexts,
            user_information=request.user_information,
        )
    )


def rejection_lines(receiver: RunningReceiver, calling: str) -> list[str]:
    pattern = re.compile(rf"WARNING.*association from {re.escape(calling)}@\S+ -> \S+ rejected")
    return [line for line in receiver.log().splitlines() if pattern.search(line)]


@pytest.mark.parametrize(
    "guarded", [{"OXIDICOM_SCP_ALLOWED_PEERS": "PACS@127.0.0.1, MR@10.0.0.0/8"}], indirect=True
)
def test_only_listed_peers_store(guarded: RunningReceiver, tmp_path: Path) -> None:
    guarded.wait_for_log(r"access control: 2 calling AE title\(s\) allowed")
    ds = mr_instance()
    path = write_part10(ds, tmp_path / "one.dcm")
    # Listed, from its host: it gets in and stores.
    allowed = storescu(guarded.port, "PACS", path)
    assert allowed.returncode == 0, allowed.stderr
    [stored] = guarded.stored_files()
    assert stored.name.endswith(f"-{ds.SOPInstanceUID}.dcm")
    assert stored.relative_to(guarded.pacs_root).parts[0] == "PACS"
    # Not listed, and listed only for 10.0.0.0/8: dcmtk is refused, nothing is stored.
    for calling in ("STRANGER", "MR"):
        refused = storescu(guarded.port, calling, write_part10(mr_instance(), tmp_path / "x.dcm"))
        assert refused.returncode != 0, refused.stdout
        assert "Calling AE Title Not Recognized" in refused.stdout + refused.stderr
    assert guarded.stored_files() == [stored]
    # The raw answer: A-ASSOCIATE-RJ, permanent (1), service user (1), reason 3.
    assert answer_to(RawPeer.connect(guarded.port), associate_rq("STRANGER")) == (
        CALLING_NOT_RECOGNIZED
    )
    assert answer_to(RawPeer.connect(guarded.port), associate_rq("MR")) == CALLING_NOT_RECOGNIZED
    # Case matters, as in dcmtk (the AE title names the PACS folder).
    assert answer_to(RawPeer.connect(guarded.port), associate_rq("pacs")) == (
        CALLING_NOT_RECOGNIZED
    )
    # A rejection is one WARNING with the peer address, both AE titles and the reason;
    # the same rejection again within 10 s is counted, and the count logged (at the
    # latest at the stop), so that a flood of requests is not a flood of lines.
    assert guarded.stop() == 0
    [line] = rejection_lines(guarded, "MR")
    assert re.search(
        r"association from MR@127\.0\.0\.1:\d+ -> ChRIS rejected: calling AE title not"
        r" recognized: 'MR' is allowed only as MR@10\.0\.0\.0/8, not from 127\.0\.0\.1",
        line,
    )
    [line] = rejection_lines(guarded, "STRANGER")
    assert "'STRANGER' is not in OXIDICOM_SCP_ALLOWED_PEERS" in line
    for calling in ("MR", "STRANGER"):
        assert re.search(
            rf"WARNING.*rejected 1 more association\(s\) \(\w+: {calling} from 127\.0\.0\.1\)",
            guarded.log(),
        ), guarded.log()


@pytest.mark.parametrize(
    "guarded", [{"OXIDICOM_SCP_ALLOWED_PEERS": "PACS@127.0.0.1"}], indirect=True
)
def test_the_source_address_decides(guarded: RunningReceiver) -> None:
    refused = answer_to(connect_from("127.0.0.2", guarded.port), associate_rq("PACS"))
    assert refused == CALLING_NOT_RECOGNIZED
    with connect_from("127.0.0.1", guarded.port) as peer:
        peer.associate(associate_rq("PACS"))
        assert peer.c_echo() == 0x0000
        peer.release()
    guarded.wait_for_log(r"association from PACS@127\.0\.0\.2:\d+ -> ChRIS rejected")


@pytest.mark.parametrize(
    "guarded",
    [{"OXIDICOM_SCP_ALLOWED_PEERS": "PACS", "OXIDICOM_LISTENER_THREADS": "1"}],
    indirect=True,
)
def test_refused_peers_take_no_association_slot(guarded: RunningReceiver) -> None:
    # Three refused peers stay connected; the one slot is still free for a listed one.
    strangers = [RawPeer.connect(guarded.port) for _ in range(3)]
    try:
        for stranger in strangers:
            stranger.send(associate_rq("STRANGER"))
            assert stranger.read_pdu() == CALLING_NOT_RECOGNIZED
        with RawPeer.connect(guarded.port) as peer:
            peer.associate(associate_rq("PACS"))
            assert peer.c_echo() == 0x0000
            peer.release()
    finally:
        for stranger in strangers:
            stranger.close()


@pytest.mark.parametrize("guarded", [{"OXIDICOM_SCP_CHECK_CALLED_AET": "true"}], indirect=True)
def test_a_called_ae_title_not_ours_is_rejected_when_checked(
    guarded: RunningReceiver, tmp_path: Path
) -> None:
    assert answer_to(RawPeer.connect(guarded.port), called_rq("NOTCHRIS")) == (
        CALLED_NOT_RECOGNIZED
    )
    require_tool(ECHOSCU)
    wrong = subprocess.run(
        [ECHOSCU, "-aec", "chris", "127.0.0.1", str(guarded.port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode != 0
    assert "Called AE Title Not Recognized" in wrong.stdout + wrong.stderr
    right = echoscu(guarded.port)  # called AE ChRIS
    assert right.returncode == 0, right.stderr
    guarded.wait_for_log(
        r"association from RAWPEER@127\.0\.0\.1:\d+ -> NOTCHRIS rejected: called AE title not"
        r" recognized: 'NOTCHRIS' is not ours \('ChRIS', OXIDICOM_SCP_CHECK_CALLED_AET\)"
    )


def test_by_default_any_called_ae_title_is_accepted(receiver: RunningReceiver) -> None:
    with RawPeer.connect(receiver.port) as peer:
        peer.associate(called_rq("WHOEVER"))
        peer.release()


def test_the_health_check_must_be_listed(tmp_path: Path) -> None:
    unlisted = start_receiver(tmp_path / "a", {"OXIDICOM_SCP_ALLOWED_PEERS": "PACS"})
    try:
        unlisted.wait_for_log(
            r"WARNING.*the health check \(oxidicom echo: OXIDICOM-ECHO@127\.0\.0\.1\) will be"
            r" rejected .*; list OXIDICOM-ECHO@127\.0\.0\.1 in OXIDICOM_SCP_ALLOWED_PEERS"
        )
        result = oxidicom_echo(OXIDICOM_LISTENER_PORT=str(unlisted.port))
    finally:
        assert unlisted.stop() == 0
    assert result.returncode == 1
    assert "rejected the association: permanent, source service user, reason calling ae" in (
        result.stderr
    )
    listed = start_receiver(
        tmp_path / "b", {"OXIDICOM_SCP_ALLOWED_PEERS": "PACS,OXIDICOM-ECHO@127.0.0.1"}
    )
    try:
        result = oxidicom_echo(OXIDICOM_LISTENER_PORT=str(listed.port))
    finally:
        assert listed.stop() == 0
    assert result.returncode == 0, result.stderr
    assert "the health check" not in listed.log()


def test_an_unresolvable_host_name_stops_the_start_with_one_line(tmp_path: Path) -> None:
    env = {
        "OXIDICOM_FILES_ROOT": str(tmp_path / "files"),
        "OXIDICOM_OUTBOX_DIR": str(tmp_path / "outbox"),
        "OXIDICOM_LISTENER_PORT": "0",
        "OXIDICOM_SCP_ALLOWED_PEERS": "PACS@127.0.0.1,MR@no-such-host.invalid",
    }
    result = subprocess.run(
        [sys.executable, "-m", "oxidicom"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "oxidicom: OXIDICOM_SCP_ALLOWED_PEERS='PACS@127.0.0.1,MR@no-such-host.invalid' is not"
        " valid: entry 'MR@no-such-host.invalid': host name 'no-such-host.invalid' does not"
        " resolve: "
    )


# -- TLS: client certificates bound to AE titles -------------------------------------------


@pytest.fixture
def bound_tls(pki: Pki, tmp_path: Path) -> Iterator[RunningReceiver]:  # noqa: F811
    env = tls_env(pki, mutual=True)
    env["OXIDICOM_TLS_CLIENT_AETS"] = "client=TLSPACS,client=TLSMR"
    receiver = start_receiver(tmp_path, env)
    yield receiver
    assert receiver.stop() == 0
    assert "Traceback" not in receiver.log()


def test_a_client_certificate_may_use_only_its_ae_titles(
    bound_tls: RunningReceiver,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    credentials = ("+tls", pki.client.key, pki.client.cert, "+cf", pki.ca.cert)

    def dcmtk(tool: str, calling: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        require_tool(tool)
        command = [tool, "-aet", calling, "-aec", "ChRIS", *map(str, credentials)]
        return subprocess.run(
            [*command, "127.0.0.1", str(bound_tls.port), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    path = write_part10(mr_instance(), tmp_path / "one.dcm")
    stored = dcmtk(STORESCU, "TLSPACS", path)
    assert stored.returncode == 0, stored.stderr
    assert len(bound_tls.stored_files()) == 1
    other = dcmtk(STORESCU, "PACS", write_part10(mr_instance(), tmp_path / "two.dcm"))
    assert other.returncode != 0
    assert len(bound_tls.stored_files()) == 1
    # The same from the raw PDU: the AE title is not bound to this certificate.
    with tls_peer(bound_tls, pki, pki.client) as peer:
        peer.send(associate_rq("PACS"))
        assert peer.read_pdu() == CALLING_NOT_RECOGNIZED
    with tls_peer(bound_tls, pki, pki.client) as peer:
        peer.associate(associate_rq("TLSMR"))
        assert peer.c_echo() == 0x0000
        # Over TLS the receiver waits for our close after A-RELEASE-RP (no half-close).
        peer.send(ul.encode(ul.ReleaseRQ()))
        assert isinstance(peer.read_pdu(), ul.ReleaseRP)
    bound_tls.wait_for_log(
        r"association from PACS@127\.0\.0\.1:\d+ -> ChRIS rejected: calling AE title not"
        r" recognized: 'PACS' is not bound to the client certificate \(client\)"
    )


def test_a_certificate_not_listed_is_rejected(
    bound_tls: RunningReceiver,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    # Signed by the trusted CA, so the handshake succeeds; but its CN is not bound.
    other = make_leaf(pki.ca, tmp_path, "other-device", server=False)
    with tls_peer(bound_tls, pki, other) as peer:
        peer.send(associate_rq("TLSPACS"))
        assert peer.read_pdu() == CALLING_NOT_RECOGNIZED
    bound_tls.wait_for_log(
        r"rejected: calling AE title not recognized: no identity of the client certificate"
        r" \(other-device\) is in OXIDICOM_TLS_CLIENT_AETS"
    )
    assert bound_tls.stored_files() == []


@pytest.mark.parametrize(
    "guarded", [{"OXIDICOM_SCP_ALLOWED_PEERS": "PACS@127.0.0.1"}], indirect=True
)
def test_a_flood_of_rejected_requests_is_logged_as_counts(guarded: RunningReceiver) -> None:
    """300 requests from an unlisted AE title cost a few log lines, not 300; another
    peer rejected meanwhile still gets its own line."""
    for n in range(300):
        calling = "OTHER" if n == 150 else "STRANGER"
        assert answer_to(RawPeer.connect(guarded.port), associate_rq(calling)) == (
            CALLING_NOT_RECOGNIZED
        )
    assert guarded.stop() == 0  # the last count is logged at the stop
    log = guarded.log()
    processes = guarded.processes()  # each worker summarizes what it rejected
    strangers = len(rejection_lines(guarded, "STRANGER"))
    assert 1 <= strangers <= processes
    assert len(rejection_lines(guarded, "OTHER")) == 1
    counts = [
        int(n)
        for n in re.findall(
            r"rejected (\d+) more association\(s\) \(calling_ae_title_not_recognized:"
            r" STRANGER from 127\.0\.0\.1\)",
            log,
        )
    ]
    assert 1 <= len(counts) <= 3 * processes
    assert strangers + sum(counts) == 299
