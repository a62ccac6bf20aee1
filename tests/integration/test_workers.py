"""OXIDICOM_WORKERS: several receiver processes, served connections by their supervisor.

Real processes and real peers: every file of concurrent associations lands, SIGTERM
stops every worker and exits 0, a killed worker is started again, a worker that cannot
start stops the whole receiver with its status, the workers share the limits as one
receiver (slots, and preemption of a slow association wherever it runs), workers stop
when their supervisor is killed, and DICOMweb runs in the first worker only.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from oxidicom.app.settings import SettingsError, load_settings
from oxidicom.ul import pdu as ul
from tests.dicom_factory import mr_instance, write_part10
from tests.dicomweb_helpers import multipart, part10
from tests.integration.conftest import ECHOSCU, echoscu, require_tool
from tests.integration.dicomweb import post, start_stow_receiver
from tests.integration.raw_peer import RawPeer, associate_rq
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.receiver import child_processes as children

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"
LISTENING = r"listening on 127\.0\.0\.1:\d+"


def start_workers(tmp_path: Path, workers: int = 2, **env: str) -> RunningReceiver:
    receiver = start_receiver(tmp_path, {"OXIDICOM_WORKERS": str(workers), **env})
    receiver.wait_for_log_count(LISTENING, workers)
    return receiver


def send(receiver: RunningReceiver, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            STORESCU,
            "-aet",
            "WORKERTEST",
            "-aec",
            "ChRIS",
            "+sd",
            "+r",
            "127.0.0.1",
            str(receiver.port),
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TCP_NODELAY": "1"},
    )


def test_concurrent_associations_all_land(tmp_path: Path) -> None:
    require_tool(STORESCU)
    senders, per_sender = 4, 15
    folders = []
    for s in range(senders):
        folder = tmp_path / f"send{s}"
        folder.mkdir()
        for i in range(per_sender):
            ds = mr_instance(instance_number=i + 1, series_uid=f"1.2.826.0.1.3680043.8.498.9{s}")
            write_part10(ds, folder / f"{i}.dcm")
        folders.append(folder)
    receiver = start_workers(tmp_path / "rx")
    try:
        assert len(children(receiver.process.pid)) == 2
        with ThreadPoolExecutor(senders) as pool:
            results = list(pool.map(lambda f: send(receiver, f), folders))
        assert [r.returncode for r in results] == [0] * senders, [r.stderr for r in results]
        assert len(receiver.stored_files()) == senders * per_sender
    finally:
        assert receiver.stop() == 0
    log = receiver.log()
    assert log.count("association ended (released)") == senders
    assert log.count("series finished: 15 file(s)") == senders


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    receiver = start_workers(tmp_path, workers=3, OXIDICOM_LISTENER_THREADS="12")
    workers = children(receiver.process.pid)
    assert len(workers) == 3
    assert receiver.stop(signal.SIGTERM) == 0
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)
    log = receiver.log()
    lines = log.splitlines()
    # Each worker names itself on its lines; the supervisor's line comes last.
    stopped = sorted(re.findall(r" worker-(\d) INFO oxidicom \[-\] stopped$", log, re.M))
    assert stopped == ["1", "2", "3"]
    assert re.search(r" INFO oxidicom.workers \[-\] oxidicom supervisor: stopped", lines[-1])
    assert "the supervisor's channel ended" not in receiver.log()  # it was there all along


def test_a_killed_worker_is_started_again(tmp_path: Path) -> None:
    require_tool(ECHOSCU)
    receiver = start_workers(tmp_path)
    try:
        first = children(receiver.process.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        receiver.wait_for_log(rf"pid {victim}\) ended with status -9")
        receiver.wait_for_log_count(LISTENING, 3)
        now = children(receiver.process.pid)
        assert len(now) == 2 and victim not in now
        echo = echoscu(receiver.port, timeout=30)
        assert echo.returncode == 0, echo.stderr
    finally:
        assert receiver.stop() == 0


def test_a_worker_that_cannot_start_stops_the_receiver(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("in the way")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OXIDICOM_", "OTEL_"))}
    env |= {
        "OXIDICOM_WORKERS": "2",
        "OXIDICOM_LISTENER_ADDRESS": "127.0.0.1",
        "OXIDICOM_LISTENER_PORT": "0",
        "OXIDICOM_FILES_ROOT": str(not_a_folder / "files"),
        "OXIDICOM_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "oxidicom"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot use OXIDICOM_FILES_ROOT" in result.stderr
    assert "could not start (exit status 1): stopping" in result.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("4", 4), (" 2 ", 2), ("auto", None), (" AUTO", None)],
)
def test_workers_setting(tmp_path: Path, value: str, expected: int | None) -> None:
    assert load_settings({"OXIDICOM_WORKERS": value}, tmp_path).workers == expected


@pytest.mark.parametrize("value", ["0", "-1", "65", "two"])
def test_bad_workers_setting(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="OXIDICOM_WORKERS"):
        load_settings({"OXIDICOM_WORKERS": value}, tmp_path)


# -- the supervisor hands connections over; the workers share the limits ----------------

ACCEPTED_BY = re.compile(r"\[(?P<worker>\w+)-\d+\] association from .* accepted")


def worker_prefixes(receiver: RunningReceiver) -> list[str]:
    """Each accepted association's worker (the random prefix of its id)."""
    return [m.group("worker") for m in ACCEPTED_BY.finditer(receiver.log())]


def test_the_workers_hold_the_slots_together_and_spread_them(tmp_path: Path) -> None:
    """OXIDICOM_LISTENER_THREADS is for the whole receiver: eight slots over two workers
    hold eight associations, four each, and refuse a ninth like one process would."""
    receiver = start_workers(tmp_path, OXIDICOM_MIN_TRANSFER_RATE="0")
    peers = [RawPeer.connect(receiver.port) for _ in range(8)]
    try:
        for peer in peers:
            peer.associate()
        receiver.wait_for_log_count("accepted", 8)
        held = worker_prefixes(receiver)
        assert sorted(held.count(w) for w in set(held)) == [4, 4], held
        with RawPeer.connect(receiver.port) as ninth:
            ninth.send(associate_rq("NINTH"))
            assert isinstance(ninth.read_pdu(), ul.AssociateRJ)
        peers.pop().close()  # its slot is free again, in whichever worker held it
        receiver.wait_for_log("connection from .* ended")
        with RawPeer.connect(receiver.port) as tenth:
            tenth.associate(associate_rq("TENTH"))
            assert tenth.c_echo() == 0
    finally:
        for peer in peers:
            peer.close()
        assert receiver.stop() == 0
    log = receiver.log()
    assert "worker 1 of 2: at most 4 association(s)" in log
    assert "worker 2 of 2: at most 4 association(s)" in log
    assert re.search(
        r"NINTH.* rejected: too many associations: 4 already running"
        r" \(worker [12] of 2's part of OXIDICOM_LISTENER_THREADS=8\)",
        log,
    ), log


def test_one_worker_per_four_slots(tmp_path: Path) -> None:
    """With fewer slots per worker, a host holding one or two in each would keep them all
    (the fairness rules are judged within a worker): OXIDICOM_WORKERS=4 with 8 slots is
    two workers, and says so."""
    receiver = start_receiver(tmp_path, {"OXIDICOM_WORKERS": "4"})
    receiver.wait_for_log_count(LISTENING, 2)
    try:
        assert len(children(receiver.process.pid)) == 2
    finally:
        assert receiver.stop() == 0
    assert "OXIDICOM_WORKERS=4, but with OXIDICOM_LISTENER_THREADS=8 only 2 worker(s)" in (
        receiver.log()
    )


def test_a_newcomer_takes_a_slow_ones_slot_in_another_worker(tmp_path: Path) -> None:
    """Eight slots, four per worker: four idle associations and a connection that asks
    for nothing in one worker, four busy associations in the other. The busy ones' worker
    has fewer connections, but a newcomer would be refused there: once an idle one is
    judged too slow (after 2 s), the newcomer goes to the idle ones' worker and takes
    one's slot, as it would in one process."""
    receiver = start_workers(
        tmp_path, OXIDICOM_MIN_TRANSFER_RATE="1000", OXIDICOM_MAX_ASSOCIATION_RATE="0"
    )
    idle: list[RawPeer] = []
    fast: list[RawPeer] = []
    for number in range(4):  # one after the other: to each worker in turn
        idle.append(RawPeer.connect(receiver.port))
        idle[-1].associate(associate_rq(f"IDLE{number}"))
        fast.append(RawPeer.connect(receiver.port))
        fast[-1].associate(associate_rq(f"FAST{number}"))
    silent = RawPeer.connect(receiver.port)  # the idle ones' worker's fifth connection
    stop_echoes = threading.Event()
    try:
        receiver.wait_for_log_count("accepted", 8)
        placed = worker_prefixes(receiver)
        idle_worker = placed[0]
        assert placed == [idle_worker, placed[1]] * 4 and placed[1] != idle_worker, placed

        def keep_busy() -> int:
            echoes = 0
            while not stop_echoes.is_set():
                for peer in fast:
                    assert peer.c_echo(message_id=echoes % 60000 + 1) == 0
                echoes += 1
            return echoes

        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(keep_busy)
            receiver.wait_for_log(r"reporting 4 association\(s\) here preemptible")
            accepted = RawPeer.connect(receiver.port)
            accepted.send(associate_rq("NEWCOMER"))
            answer = accepted.read_pdu()
            stop_echoes.set()
            assert busy.result() > 0
        assert isinstance(answer, ul.AssociateAC), receiver.log()
        with accepted:
            assert accepted.c_echo() == 0
        assert [peer.c_echo() for peer in fast] == [0] * 4  # never touched
    finally:
        stop_echoes.set()
        for peer in (*fast, *idle, silent):
            peer.close()
        assert receiver.stop() == 0
    log = receiver.log()
    assert re.search(r"IDLE\d@.* preempted: .* its slot goes to NEWCOMER", log), log
    assert worker_prefixes(receiver)[8] == idle_worker


def test_a_host_holding_every_slot_gives_one_up_whatever_the_worker(tmp_path: Path) -> None:
    """One address holds all eight slots, four in each worker; a newcomer from another
    address takes one of them (the host-share rule), wherever it lands."""
    receiver = start_workers(tmp_path)
    hog = [RawPeer.connect(receiver.port, source="127.0.0.2") for _ in range(8)]
    try:
        for peer in hog:
            peer.associate(associate_rq("HOG"))
        with RawPeer.connect(receiver.port) as newcomer:
            newcomer.associate(associate_rq("NEWCOMER"))
            assert newcomer.c_echo() == 0
        found = receiver.wait_for_log(r"HOG@127\.0\.0\.2:(\d+) preempted")
        [preempted] = [p for p in hog if p.sock.getsockname()[1] == int(found.group(1))]
        assert preempted.read_until_closed() == [ul.Abort(0, 0)]
        assert [p.c_echo() for p in hog if p is not preempted] == [0] * 7
    finally:
        for peer in hog:
            peer.close()
        assert receiver.stop() == 0
    # Counted over the whole receiver, as one process counts them.
    assert re.search(r"127\.0\.0\.2 holds 8 of the 8 slots and 127\.0\.0\.1 0", receiver.log()), (
        receiver.log()
    )


def test_a_host_holding_most_slots_of_the_receiver_gives_one_up(tmp_path: Path) -> None:
    """127.0.0.2 holds 4 of the 8 slots, 2 in each worker; 127.0.0.3 and 127.0.0.4 hold
    the other 4, one in each worker each. A newcomer from 127.0.0.4 (2 slots) takes one
    of 127.0.0.2's, as in one process: judged within a worker (2 against 1) it would be
    refused."""
    receiver = start_workers(tmp_path)
    sources = ["127.0.0.2"] * 4 + ["127.0.0.3"] * 2 + ["127.0.0.4"] * 2
    peers = [RawPeer.connect(receiver.port, source=source) for source in sources]
    try:
        for peer, source in zip(peers, sources, strict=True):
            peer.associate(associate_rq(f"AT{source[-1]}"))
        receiver.wait_for_log_count("accepted", 8)
        workers = worker_prefixes(receiver)
        assert len(set(workers[:4])) == 2 and len(set(workers[4:6])) == 2, workers
        with RawPeer.connect(receiver.port, source="127.0.0.4") as newcomer:
            newcomer.associate(associate_rq("NEWCOMER"))
            assert newcomer.c_echo() == 0
        found = receiver.wait_for_log(r"AT2@127\.0\.0\.2:(\d+) preempted")
        [preempted] = [p for p in peers if p.sock.getsockname()[1] == int(found.group(1))]
        assert preempted.read_until_closed() == [ul.Abort(0, 0)]
        assert [p.c_echo() for p in peers if p is not preempted] == [0] * 7
    finally:
        for peer in peers:
            peer.close()
        assert receiver.stop() == 0
    assert re.search(r"127\.0\.0\.2 holds 4 of the 8 slots and 127\.0\.0\.4 2", receiver.log()), (
        receiver.log()
    )


def test_the_request_rate_holds_for_the_whole_receiver(tmp_path: Path) -> None:
    """3/min with two workers: one address gets three requests at once, as from one
    process, whichever worker each reaches, and the fourth is rejected (temporary
    congestion). (Divided, 1.5 a worker, its third would have been refused.)"""
    receiver = start_workers(tmp_path, OXIDICOM_MAX_ASSOCIATION_RATE="3/min")
    try:
        for _ in range(3):
            with RawPeer.connect(receiver.port) as peer:
                peer.associate()
                peer.release()
        with RawPeer.connect(receiver.port) as peer:
            peer.send(associate_rq("FOURTH"))
            answer = peer.read_pdu()
        assert isinstance(answer, ul.AssociateRJ) and answer.reason == 1, answer
        with RawPeer.connect(receiver.port, source="127.0.0.2") as other:
            other.associate()  # another address has its own
    finally:
        assert receiver.stop() == 0
    assert re.search(
        r"FOURTH.* rejected: too many association requests from 127\.0\.0\.1: more than"
        r" 3/min \(OXIDICOM_MAX_ASSOCIATION_RATE\)$",
        receiver.log(),
        re.MULTILINE,
    ), receiver.log()


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """kill -9 of the supervisor: no connection can reach the workers any more, so they
    stop as on SIGTERM, and do not linger holding the outbox and storage."""
    receiver = start_workers(tmp_path)
    workers = children(receiver.process.pid)
    assert len(workers) == 2
    receiver.process.kill()
    receiver.process.wait(30)
    receiver.wait_for_log_count("the supervisor's channel ended: stopping", 2)
    receiver.wait_for_log_count(r"\bstopped\b", 2)
    for pid in workers:
        wait_until_gone(pid)


def wait_until_gone(pid: int, timeout: float = 30.0) -> None:
    """Until ``pid`` has exited (it is not our child: pidfd tells without polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"process {pid} still running {timeout:.0f} s later"
    finally:
        os.close(fd)


def test_dicomweb_runs_in_the_first_worker(tmp_path: Path) -> None:
    stow = start_stow_receiver(tmp_path, {"OXIDICOM_WORKERS": "2"})
    try:
        stow.receiver.wait_for_log_count(LISTENING, 2)
        instance = mr_instance()
        body, content_type = multipart([part10(instance)])
        answer = post(
            stow.http_port,
            "/dicom-web/studies",
            body,
            {"Content-Type": content_type, "Accept": "application/dicom+json"},
        )
        assert answer.status == 200, answer.body
        assert len(stow.stored_files()) == 1
    finally:
        assert stow.receiver.stop() == 0
    log = stow.receiver.log()
    assert log.count("DICOMweb STOW-RS at") == 1
    assert "worker 2 of 2: at most 4 association(s) and 32 connection(s) without one" in log
