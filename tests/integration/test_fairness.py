"""Slow, stalled and deaf peers against the real process: bounded memory, fair slots, short logs.

- A peer that sends requests and never reads the responses is paused (the receiver
  stops reading while it cannot write) and cut off by the idle timeout.
- Peers that hold every association slot while sending next to nothing are preempted
  when a real sender (dcmtk's storescu) asks for a slot.
- One address churning young associations through every slot does not lock storescu
  out either, and one asking for associations too often is rejected (issue 24).
- A flood of idle connections is logged as one line and a count, not one line each.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oxidicom.dimse.commands import CommandField, encode_request
from oxidicom.scp.acceptance import reject_busy, reject_congested
from oxidicom.scp.transfer_rate import GRACE
from oxidicom.ul import pdu as ul
from oxidicom.ul.constants import RejectResult, RejectSource, UserRejectReason
from tests.integration.churning_peers import ChurningPeers
from tests.integration.conftest import echoscu, require_tool
from tests.integration.raw_peer import (
    IMPLICIT_LE,
    MR_STORAGE,
    VERIFICATION,
    RawPeer,
    associate_rq,
    pdata,
    wait_until_closed,
)
from tests.integration.receiver import RunningReceiver, start_receiver
from tests.integration.test_dcmtk_peers import STORESCU, storescu
from tests.integration.test_hostile import STORE_CONTEXTS, instance_bytes

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
_PREEMPTED = re.compile(r"association from RAWPEER@127\.0\.0\.1:(\d+) preempted")


@pytest.fixture
def tuned(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningReceiver]:
    running = start_receiver(tmp_path, request.param)
    yield running
    assert running.stop() == 0
    assert "Traceback" not in running.log()


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak so far) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


# -- a peer that never reads ---------------------------------------------------------------


@pytest.mark.parametrize("tuned", [{"OXIDICOM_IDLE_TIMEOUT": "2s"}], indirect=True)
def test_a_peer_that_never_reads_costs_bounded_memory_and_is_cut_off(
    tuned: RunningReceiver,
) -> None:
    pids = tuned.serving_pids()  # the peer reaches one of them
    before = {pid: memory_kib(pid, "VmRSS") for pid in pids}
    sock = socket.socket()
    # A small receive window: the receiver's responses fill it, and then its own buffer.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", tuned.port))
    peer = RawPeer(sock)
    peer.associate()
    echo = pdata(1, True, True, encode_request(CommandField.C_ECHO_RQ, 1))
    batch = echo * (64 * 1024 // len(echo))
    goal = 200 * MIB
    sent = 0
    outcome: list[BaseException] = []

    def send_and_never_read() -> None:
        nonlocal sent
        try:
            while sent < goal:
                sock.sendall(batch)
                sent += len(batch)
        except OSError as error:
            outcome.append(error)

    sender = threading.Thread(target=send_and_never_read, daemon=True)
    sender.start()
    # The sender blocks once the receiver stops reading, and ends when it is cut off.
    sender.join(120)
    sock.close()
    assert not sender.is_alive(), "the receiver never cut off a peer that does not read"
    assert outcome and isinstance(outcome[0], ConnectionResetError | BrokenPipeError), (
        f"{sent / MIB:.0f} MiB sent, {outcome}"
    )
    assert sent < goal
    # The receiver's peak memory: its write buffer and one read, not what was sent.
    peaks = {pid: memory_kib(pid, "VmHWM") for pid in pids}
    assert max(peaks[pid] - before[pid] for pid in pids) < 32 * 1024, (
        f"RSS {before} KiB before, peak {peaks} KiB after {sent / MIB:.0f} MiB"
    )
    tuned.wait_for_log(r"has not read our responses for 2 s: closing the connection")
    tuned.wait_for_log(r"association ended \(aborted: no complete PDU for 2 s\)")
    require_tool("/usr/bin/echoscu")
    assert echoscu(tuned.port).returncode == 0  # and everyone else is still served


# -- slow and stalled peers holding every slot -----------------------------------------------


def _hold_every_slot(port: int, slots: int) -> list[RawPeer]:
    peers = []
    for _ in range(slots):
        peer = RawPeer.connect(port)
        peers.append(peer)
        peer.associate()
    return peers


def _the_preempted(receiver: RunningReceiver, peers: list[RawPeer]) -> list[RawPeer]:
    """The raw peers the receiver says it preempted, by their port."""
    ports = {int(m.group(1)) for m in _PREEMPTED.finditer(receiver.log())}
    return [p for p in peers if p.sock.getsockname()[1] in ports]


@pytest.mark.parametrize(
    "tuned", [{"OXIDICOM_LISTENER_THREADS": "3", "OXIDICOM_IDLE_TIMEOUT": "120s"}], indirect=True
)
def test_peers_trickling_tiny_pdus_in_every_slot_are_preempted_for_storescu(
    tuned: RunningReceiver, sample_data: Path
) -> None:
    require_tool(STORESCU)
    peers = _hold_every_slot(tuned.port, 3)
    stop = threading.Event()

    def trickle() -> None:
        # One complete P-DATA-TF (a 2-byte command fragment) per peer every 0.5 s: the
        # idle timeout never fires, and the slots stay taken.
        while not stop.wait(0.5):
            for peer in peers:
                with contextlib.suppress(OSError):  # the preempted one
                    peer.send(pdata(1, True, False, b"\x00\x00"))

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        # The attack lasts past the grace a new association has; that is the scenario.
        stop.wait(GRACE + 1.0)
        source = sorted((sample_data / "SAG-anon").glob("*.dcm"))[0]
        result = storescu(tuned, source)
        assert result.returncode == 0, result.stderr
        assert len(tuned.stored_files()) == 1
    finally:
        stop.set()
        trickler.join(10)
    try:
        tuned.wait_for_log(r"preempted: \d+ bytes received in the last")
        (preempted,) = _the_preempted(tuned, peers)
        # One A-ABORT (service user, PS3.8 Table 9-26), then the close.
        assert preempted.read_until_closed() == [ul.Abort(0, 0)]
        assert len(_PREEMPTED.findall(tuned.log())) == 1  # storescu needed one slot
    finally:
        for peer in peers:
            peer.close()


@pytest.mark.parametrize(
    "tuned", [{"OXIDICOM_LISTENER_THREADS": "50", "OXIDICOM_IDLE_TIMEOUT": "120s"}], indirect=True
)
def test_fifty_stalled_associations_do_not_lock_storescu_out(
    tuned: RunningReceiver, sample_data: Path
) -> None:
    require_tool(STORESCU)
    peers = _hold_every_slot(tuned.port, 50)
    try:
        threading.Event().wait(GRACE + 0.5)  # stalled past the grace: the scenario
        source = sorted((sample_data / "SAG-anon").glob("*.dcm"))[0]
        result = storescu(tuned, source)
        assert result.returncode == 0, result.stderr
        assert len(tuned.stored_files()) == 1
        assert "idle timer expired" not in tuned.log()  # preemption, not the timeout (120 s)
        (preempted,) = _the_preempted(tuned, peers)
        assert preempted.read_until_closed() == [ul.Abort(0, 0)]
        assert len(_PREEMPTED.findall(tuned.log())) == 1
    finally:
        for peer in peers:
            peer.close()


@pytest.mark.parametrize(
    "tuned",
    [{"OXIDICOM_LISTENER_THREADS": "1", "OXIDICOM_MIN_TRANSFER_RATE": "0"}],
    indirect=True,
)
def test_with_a_minimum_rate_of_zero_nobody_is_preempted(tuned: RunningReceiver) -> None:
    (holder,) = _hold_every_slot(tuned.port, 1)
    with holder:
        threading.Event().wait(GRACE + 0.5)  # stalled past the grace
        with RawPeer.connect(tuned.port) as newcomer:
            newcomer.send(associate_rq())
            assert newcomer.read_until_closed() == [reject_busy()]
        assert holder.c_echo() == 0x0000  # still there
        holder.release()
    assert "preempted" not in tuned.log()


@pytest.mark.parametrize(
    "tuned", [{"OXIDICOM_LISTENER_THREADS": "1", "OXIDICOM_IDLE_TIMEOUT": "120s"}], indirect=True
)
def test_a_request_that_would_be_rejected_preempts_nobody(tuned: RunningReceiver) -> None:
    unacceptable = ul.encode(
        ul.AssociateRQ(
            called_ae_title="ChRIS",
            calling_ae_title="NOBODY",
            application_context="1.2.3.4",  # not DICOM's: rejected, permanent
            presentation_contexts=(ul.PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE,)),),
            user_information=ul.UserInformation(maximum_length=16384),
        )
    )
    (holder,) = _hold_every_slot(tuned.port, 1)
    with holder:
        threading.Event().wait(GRACE + 0.5)  # stalled past the grace
        with RawPeer.connect(tuned.port) as newcomer:
            newcomer.send(unacceptable)
            # Its own (permanent) rejection, decided before any slot is looked at.
            assert newcomer.read_until_closed() == [
                ul.AssociateRJ(
                    RejectResult.PERMANENT,
                    RejectSource.SERVICE_USER,
                    UserRejectReason.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
                )
            ]
        assert "preempted" not in tuned.log()
        # An acceptable request does get the stalled one's slot.
        with RawPeer.connect(tuned.port) as newcomer:
            newcomer.associate()
            assert holder.read_until_closed() == [ul.Abort(0, 0)]
            assert newcomer.c_echo() == 0x0000
            newcomer.release()


@pytest.mark.parametrize("tuned", [{"OXIDICOM_LISTENER_THREADS": "1"}], indirect=True)
def test_an_association_storing_steadily_is_not_preempted(tuned: RunningReceiver) -> None:
    uid, dataset = instance_bytes(rows=256, columns=256)  # 128 KiB of pixels
    stop = threading.Event()
    statuses: list[int] = []
    holder = RawPeer.connect(tuned.port)
    holder.associate(associate_rq(contexts=STORE_CONTEXTS))

    def store() -> None:
        while not stop.is_set():
            statuses.append(holder.c_store(dataset, uid, context_id=3))

    storing = threading.Thread(target=store)
    storing.start()
    try:
        stop.wait(GRACE + 1.0)  # storing past the grace
        with RawPeer.connect(tuned.port) as newcomer:
            newcomer.send(associate_rq(contexts=((MR_STORAGE, "1.2.840.10008.1.2.1"),)))
            assert newcomer.read_until_closed() == [reject_busy()]
    finally:
        stop.set()
        storing.join(30)
    assert statuses and set(statuses) == {0x0000}
    holder.release()
    holder.close()
    assert "preempted" not in tuned.log()


# -- one host holding every slot above the minimum rate ------------------------------------------

#: Loopback addresses other than 127.0.0.1 are other hosts to the receiver (storescu,
#: the newcomer, connects from 127.0.0.1).
ATTACKER = "127.0.0.2"
HONEST = "127.0.0.3"
#: What each draining peer sends per half second: 32 KiB/s, four times the default
#: minimum rate, so that the rate rule never sees it below (not even on a loaded machine).
DRAIN_CHUNK = 16 * 1024
_PREEMPTED_ANY = re.compile(
    r"association from (\w+)@([\d.]+):(\d+) preempted: (.*), its slot goes to (\S+)"
)


class DrainingPeers:
    """Peers that each start a C-STORE the receiver refuses at once (the command names
    another SOP instance than the data set: A900), then keep sending more of its data
    set, which is read and thrown away, forever: bytes, but no progress."""

    def __init__(self, port: int, count: int, source: str) -> None:
        uid, dataset = instance_bytes()
        command = encode_request(
            CommandField.C_STORE_RQ,
            1,
            affected_sop_class_uid=MR_STORAGE,
            affected_sop_instance_uid=f"{uid}.999",  # not the data set's: refused
            has_dataset=True,
            priority=0,
        )
        self.peers: list[RawPeer] = []
        for _ in range(count):
            peer = RawPeer.connect(port, source)
            self.peers.append(peer)
            peer.associate(associate_rq(contexts=STORE_CONTEXTS))
            peer.send(pdata(3, True, True, command) + pdata(3, False, False, dataset))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    def _drip(self) -> None:
        chunk = pdata(3, False, False, b"\0" * DRAIN_CHUNK)
        while not self._stop.wait(0.5):
            for peer in self.peers:
                with contextlib.suppress(OSError):  # the preempted one
                    peer.send(chunk)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for peer in self.peers:
            peer.close()


@pytest.mark.parametrize(
    "tuned", [{"OXIDICOM_LISTENER_THREADS": "8", "OXIDICOM_IDLE_TIMEOUT": "120s"}], indirect=True
)
def test_one_host_draining_refused_data_sets_in_every_slot_does_not_lock_storescu_out(
    tuned: RunningReceiver, sample_data: Path
) -> None:
    require_tool(STORESCU)
    attack = DrainingPeers(tuned.port, 8, ATTACKER)
    try:
        threading.Event().wait(GRACE + 1.0)  # every slot held past the grace: the scenario
        source = sorted((sample_data / "SAG-anon").glob("*.dcm"))[0]
        result = storescu(tuned, source)
        assert result.returncode == 0, result.stderr
        assert len(tuned.stored_files()) == 1
        [match] = _PREEMPTED_ANY.finditer(tuned.log())
        assert match.group(1, 2) == ("RAWPEER", ATTACKER)
        assert match.group(4).startswith(f"{ATTACKER} holds 8 of the 8 slots and 127.0.0.1 0")
        assert match.group(5).startswith("OXITESTORTHANC@127.0.0.1:")
        [preempted] = [p for p in attack.peers if p.sock.getsockname()[1] == int(match.group(3))]
        # Its refused C-STORE is never answered (that waits for the end of the data set):
        # one A-ABORT, then the close.
        assert preempted.read_until_closed() == [ul.Abort(0, 0)]
    finally:
        attack.close()


@pytest.mark.parametrize(
    "tuned", [{"OXIDICOM_LISTENER_THREADS": "3", "OXIDICOM_IDLE_TIMEOUT": "120s"}], indirect=True
)
def test_a_steady_sender_keeps_its_slot_while_the_host_holding_most_gives_one_up(
    tuned: RunningReceiver, sample_data: Path
) -> None:
    require_tool(STORESCU)
    uid, dataset = instance_bytes(rows=256, columns=256)  # 128 KiB of pixels
    honest = RawPeer.connect(tuned.port, HONEST)
    honest.associate(associate_rq(calling="HONEST", contexts=STORE_CONTEXTS))
    stop = threading.Event()
    statuses: list[int] = []

    def store() -> None:
        while not stop.is_set():
            statuses.append(honest.c_store(dataset, uid, context_id=3))

    storing = threading.Thread(target=store)
    storing.start()
    attack = DrainingPeers(tuned.port, 2, ATTACKER)
    try:
        threading.Event().wait(GRACE + 1.0)  # every slot held past the grace: the scenario
        source = sorted((sample_data / "SAG-anon").glob("*.dcm"))[0]
        result = storescu(tuned, source)
        assert result.returncode == 0, result.stderr
        [match] = _PREEMPTED_ANY.finditer(tuned.log())
        assert match.group(1, 2) == ("RAWPEER", ATTACKER)
        assert match.group(4).startswith(f"{ATTACKER} holds 2 of the 3 slots")
    finally:
        stop.set()
        storing.join(30)
        attack.close()
    assert statuses and set(statuses) == {0x0000}
    honest.release()
    honest.close()


@pytest.mark.parametrize(
    "tuned",
    [{"OXIDICOM_LISTENER_THREADS": "2", "OXIDICOM_MIN_TRANSFER_RATE": "0"}],
    indirect=True,
)
def test_with_a_minimum_rate_of_zero_one_host_may_hold_every_slot(tuned: RunningReceiver) -> None:
    holders = [RawPeer.connect(tuned.port, ATTACKER) for _ in range(2)]
    try:
        for holder in holders:
            holder.associate()
        threading.Event().wait(GRACE + 0.5)  # past the grace
        with RawPeer.connect(tuned.port) as newcomer:
            newcomer.send(associate_rq())
            assert newcomer.read_until_closed() == [reject_busy()]
        for holder in holders:
            assert holder.c_echo() == 0x0000  # still there
            holder.release()
    finally:
        for holder in holders:
            holder.close()
    assert "preempted" not in tuned.log()


# -- one host churning young associations through every slot (issue 24) -------------------------

#: How long each churning association lives: well under the grace period, so that no
#: association of the attack is ever old enough to have a rate.
CHURN_HOLD = GRACE / 2
_PREEMPTED_WHO = re.compile(r"association from (\w+)@([\d.]+):\d+ preempted: .*this is (.+?) of")


def _storescu_tries(
    receiver: RunningReceiver, source: Path, tries: int, until: Callable[[], bool] | None = None
) -> list[bool]:
    """storescu (from 127.0.0.1) ``tries`` times in a row, or if ``until`` is given, until
    it is true (at most ``tries`` times): was each admitted?"""
    admitted: list[bool] = []
    while len(admitted) < tries and not (until is not None and until()):
        result = storescu(receiver, source)
        rejected = "Association Rejected" in result.stderr
        assert rejected or result.returncode == 0, result.stderr
        admitted.append(not rejected)
    return admitted


@pytest.mark.parametrize(
    "tuned", [{"OXIDICOM_LISTENER_THREADS": "4", "OXIDICOM_IDLE_TIMEOUT": "120s"}], indirect=True
)
def test_one_host_churning_young_associations_does_not_lock_storescu_out(
    tuned: RunningReceiver, sample_data: Path
) -> None:
    """A steady sender holds one slot; one address holds the others with associations it
    releases at half the grace period and reopens at once. storescu gets in all the same
    (it takes one of the churning host's slots), and the steady sender keeps its own."""
    require_tool(STORESCU)
    uid, dataset = instance_bytes(rows=256, columns=256)  # 128 KiB of pixels
    honest = RawPeer.connect(tuned.port, HONEST)
    honest.associate(associate_rq(calling="HONEST", contexts=STORE_CONTEXTS))
    stop = threading.Event()
    statuses: list[int] = []

    def store() -> None:
        while not stop.is_set():
            statuses.append(honest.c_store(dataset, uid, context_id=3))

    storing = threading.Thread(target=store)
    storing.start()
    source = sorted((sample_data / "SAG-anon").glob("*.dcm"))[0]
    try:
        with ChurningPeers(tuned.port, 3, ATTACKER, CHURN_HOLD) as attack:
            attack.wait_until_all_hold()
            # Tries for as long as it takes each churning peer to reopen twice on average
            # (about 2 s); the count only bounds a broken attack, at about 30 s of tries.
            during = _storescu_tries(tuned, source, 1000, lambda: attack.accepted >= 3 + 2 * 3)
        after = _storescu_tries(tuned, source, 3)
    finally:
        stop.set()
        storing.join(30)
    assert statuses and set(statuses) == {0x0000}  # never preempted, every C-STORE stored
    honest.release()
    honest.close()
    assert attack.accepted >= 3 + 2 * 3, f"the attack did not churn: {len(during)} tries"
    assert sum(during) >= 0.8 * len(during), f"admitted {sum(during)} of {len(during)} tries"
    assert all(after), after
    preempted = _PREEMPTED_WHO.findall(tuned.log())
    assert preempted, "storescu got in without preempting anyone: no attack was measured"
    # Only the churning host's associations, and young ones (held for half the grace
    # period: only a thread held up for longer than that could make one old).
    assert {(calling, host) for calling, host, _ in preempted} == {("CHURNER", ATTACKER)}
    assert ("CHURNER", ATTACKER, "a young one") in preempted


@pytest.mark.parametrize(
    "tuned", [{"OXIDICOM_LISTENER_THREADS": "8", "OXIDICOM_IDLE_TIMEOUT": "120s"}], indirect=True
)
def test_storescu_arriving_as_another_host_fills_every_slot_gets_in_at_once(
    tuned: RunningReceiver, sample_data: Path
) -> None:
    """Issue 24's related case: the slots were all taken a moment ago, by associations
    far younger than the grace period; a newcomer from another address need not wait."""
    require_tool(STORESCU)
    holders = [RawPeer.connect(tuned.port, ATTACKER) for _ in range(8)]
    try:
        for holder in holders:
            holder.associate()
        source = sorted((sample_data / "SAG-anon").glob("*.dcm"))[0]
        assert _storescu_tries(tuned, source, 1) == [True]
        [(calling, host, which)] = _PREEMPTED_WHO.findall(tuned.log())
        assert (calling, host, which) == ("RAWPEER", ATTACKER, "a young one")
    finally:
        for holder in holders:
            holder.close()


# -- how often one address may ask for an association ------------------------------------------


@pytest.mark.parametrize(
    "tuned",
    [{"OXIDICOM_LISTENER_THREADS": "2", "OXIDICOM_MAX_ASSOCIATION_RATE": "2/min"}],
    indirect=True,
)
def test_an_address_asking_too_often_is_rejected_and_preempts_nobody(
    tuned: RunningReceiver,
) -> None:
    # 2/min: two requests at once, then one every 30 s, far longer than this test.
    for _ in range(2):
        with RawPeer.connect(tuned.port, ATTACKER) as peer:
            peer.associate()
            peer.release()
    # Another address takes every slot: a request from ATTACKER would preempt one of
    # them (2 slots against 0) were it not over its rate.
    holders = [RawPeer.connect(tuned.port, HONEST) for _ in range(2)]
    try:
        for holder in holders:
            holder.associate()
        for _ in range(3):
            with RawPeer.connect(tuned.port, ATTACKER) as peer:
                peer.send(associate_rq())
                assert peer.read_until_closed() == [reject_congested()]
        assert "preempted" not in tuned.log()
        for holder in holders:
            assert holder.c_echo() == 0x0000  # still there
        # Another address has a bucket of its own (and does preempt).
        with RawPeer.connect(tuned.port) as newcomer:
            newcomer.associate()
            assert newcomer.c_echo() == 0x0000
            newcomer.release()
    finally:
        for holder in holders:
            holder.close()
    assert tuned.stop() == 0  # the last count is logged at shutdown
    log = tuned.log()
    first = re.findall(
        r"association from RAWPEER@127\.0\.0\.2:\d+ -> ChRIS rejected: too many association"
        r" requests from 127\.0\.0\.2: more than 2/min \(OXIDICOM_MAX_ASSOCIATION_RATE\)",
        log,
    )
    counts = re.findall(
        r"rejected (\d+) more association\(s\) \(request_rate_exceeded: RAWPEER from"
        r" 127\.0\.0\.2\)",
        log,
    )
    assert len(first) == 1
    assert [int(n) for n in counts] == [2]
    assert len(_PREEMPTED_ANY.findall(log)) == 1  # the newcomer from 127.0.0.1's


# -- a flood of idle connections ---------------------------------------------------------------


@pytest.mark.parametrize("tuned", [{"OXIDICOM_MAX_PENDING_CONNECTIONS": "10"}], indirect=True)
def test_a_flood_of_idle_connections_is_logged_as_a_count(tuned: RunningReceiver) -> None:
    flood = [RawPeer.connect(tuned.port) for _ in range(300)]
    try:
        # All but 10 evicted, without a word: the oldest first in one process, the
        # oldest of its own part in each of several workers.
        wait_until_closed(flood, 290)
    finally:
        for peer in flood:
            peer.close()
    assert tuned.stop() == 0  # the last count is logged at shutdown
    log = tuned.log()
    first = re.findall(r"closing connection from \S+: more than 10 connections", log)
    counts = [int(n) for n in re.findall(r"closed (\d+) more connection\(s\)", log)]
    processes = tuned.processes()  # each worker summarizes what it closed
    assert 1 <= len(first) <= processes
    assert 1 <= len(counts) <= 3 * processes
    assert len(first) + sum(counts) == 290
