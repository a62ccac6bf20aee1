"""A refused instance leaves nothing behind at the moment of its answer (issue 12, item 2).

On a real ext4 file system (a loop image) with OXIDICOM_FSYNC=true, a 12 MiB instance
meets a full disk at its first flush (DEFAULT_FLUSH_BYTES) and gets A700. The data set
goes on for two flushes' worth after that, so the receiver knows of the failure before
the data set ends: the path where the answer used to leave at once while a background
task closed and removed the temporary file. The moment the answer's first byte reaches
the peer, the receiver is frozen (SIGSTOP) and looked at: no file of the instance in its
temporary folder, no descriptor open on the image but its lock file.

Without the fix every run failed at the first attempt (the file and its descriptor were
still there). The freeze leaves the receiver the few microseconds between the byte's
arrival and the signal; the second variant runs it under strace with every unlink(2)
delayed 0.3 s, so that a cleanup after the answer is seen whatever the timing. Each
variant makes five attempts, which must all pass.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxidicom.dimse.commands import CommandField, encode_request
from oxidicom.storage.tmpdir import LOCK_NAME
from oxidicom.storage.writer import DEFAULT_FLUSH_BYTES, TMP_DIR_NAME
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.conftest import IN_CI
from tests.integration.raw_peer import (
    EXPLICIT_LE,
    MR_STORAGE,
    RawPeer,
    associate_rq,
    dataset_of,
    message,
)
from tests.integration.receiver import RunningReceiver, child_processes, start_receiver

pytestmark = pytest.mark.integration

IMAGE_SIZE = 40 * 1024 * 1024
#: 12 MiB: streamed; its first flush fails, and the data set goes on for two flushes more,
#: so that the failure is known before the data set ends (the path that raced).
INSTANCE_PIXELS = 3 * DEFAULT_FLUSH_BYTES
ATTEMPTS = 5
UNLINK_DELAY_US = 300_000


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False)


@pytest.fixture
def ext4_disk(tmp_path: Path) -> Iterator[Path]:
    """A 40 MiB ext4 file system on a loop device, mounted at ``tmp_path / "disk"``."""
    image = tmp_path / "disk.img"
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    with open(image, "wb") as out:
        out.truncate(IMAGE_SIZE)
    made = _run("mkfs.ext4", "-q", "-F", str(image))
    mounted = (
        made if made.returncode != 0 else _run("mount", "-o", "loop", str(image), str(mountpoint))
    )
    if mounted.returncode != 0:
        why = (
            "cannot make and mount an ext4 loop image (needs root, mkfs.ext4, a loop "
            f"device): {(made.stderr or mounted.stderr).strip()}"
        )
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield mountpoint
    finally:
        if _run("umount", str(mountpoint)).returncode != 0:
            _run("umount", "-l", str(mountpoint))


#: The receiver under strace, every unlink(2) delayed: a cleanup that runs after the
#: answer (the bug) is then seen every time, not only when the peer is quicker than it.
#: The product is unchanged; strace only slows the system call (seccomp-bpf: no other
#: system call stops).
SLOW_UNLINK = [
    "strace",
    "--seccomp-bpf",
    "-f",
    "-qq",
    "-o",
    "/dev/null",
    "-e",
    "trace=unlink,unlinkat",
    "-e",
    f"inject=unlink,unlinkat:delay_enter={UNLINK_DELAY_US}",
]


@pytest.fixture(params=["as it runs", "unlink(2) delayed by strace"])
def receiver(
    request: pytest.FixtureRequest, ext4_disk: Path, tmp_path: Path
) -> Iterator[RunningReceiver]:
    command = None
    if request.param != "as it runs":
        if shutil.which("strace") is None:
            why = "strace is not installed (apt-get install strace)"
            if IN_CI:
                pytest.fail(why)
            pytest.skip(why)
        command = [*SLOW_UNLINK, sys.executable, "-m", "oxidicom"]
    files_root = ext4_disk / "files"
    env = {"OXIDICOM_FILES_ROOT": str(files_root), "OXIDICOM_FSYNC": "true"}
    running = start_receiver(tmp_path / "run", env, command=command)
    running.files_root = files_root
    yield running
    if command is None:
        assert running.stop() == 0
    else:  # strace blocks fatal signals: they go to the receiver itself
        pid = receiver_pid(running)
        os.kill(pid, signal.SIGTERM)
        try:
            code = running.stop()
        except AssertionError:  # strace was killed: its child must not outlive it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            raise
        assert code == 0
    assert "Traceback" not in running.log()


def receiver_pid(receiver: RunningReceiver) -> int:
    """The receiver's own process: the one started, or strace's child."""
    pid = receiver.process.pid
    if Path(f"/proc/{pid}/exe").resolve().name != "strace":
        return pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    [child] = children
    return int(child)


def serving_pids(receiver: RunningReceiver) -> list[int]:
    """The processes that store instances: the receiver's workers, or itself alone."""
    pid = receiver_pid(receiver)
    return sorted(child_processes(pid)) or [pid]


def streamed_instance(number: int) -> tuple[str, bytes]:
    side = int((INSTANCE_PIXELS // 2) ** 0.5)
    ds = mr_instance(instance_number=number, rows=side, columns=side)
    buffer = io.BytesIO()
    write_part10(ds, buffer)  # type: ignore[arg-type]
    return str(ds.SOPInstanceUID), dataset_of(buffer.getvalue())


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk until only about ``leave`` bytes are free."""
    filler = disk / "filler"
    with open(filler, "wb") as out, contextlib.suppress(OSError):  # ENOSPC: full
        for _ in range(IMAGE_SIZE // (1 << 20)):
            out.write(b"\x00" * (1 << 20))
        out.flush()
        os.fsync(out.fileno())
    with open(filler, "r+b") as out:
        out.truncate(max(filler.stat().st_size - leave, 0))
        os.fsync(out.fileno())
    return filler


def instance_files(receiver: RunningReceiver) -> list[str]:
    """Files in the receiver's temporary folders but their lock files."""
    tmp = receiver.files_root / TMP_DIR_NAME
    return sorted(str(p) for p in tmp.glob("*/*") if p.name != LOCK_NAME)


def descriptors_into(pid: int, disk: Path) -> list[str]:
    """What the process's descriptors point to on ``disk``, its lock file aside."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith(f"{disk}/") and not target.endswith(f"/{LOCK_NAME}"):
                found.append(target)
    return found


def store_and_look_at_the_answer(
    peer: RawPeer, receiver: RunningReceiver, disk: Path, dataset: bytes, uid: str, number: int
) -> tuple[int, list[str], list[str]]:
    """Send one C-STORE; freeze the receiver as soon as the answer arrives and look.

    Returns (status, temporary files, descriptors) as they were when the answer came.
    """
    command = encode_request(
        CommandField.C_STORE_RQ,
        number,
        affected_sop_class_uid=MR_STORAGE,
        affected_sop_instance_uid=uid,
        has_dataset=True,
        priority=0,
    )
    peer.send(message(1, command, dataset, 16000))
    pids = serving_pids(receiver)
    assert peer.sock.recv(1, socket.MSG_PEEK)  # the first byte of the answer is here
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        files = instance_files(receiver)
        descriptors = [d for pid in pids for d in descriptors_into(pid, disk)]
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    return peer.response_status(), files, descriptors


def test_an_a700_mid_stream_leaves_no_file_and_no_descriptor_when_answered(
    receiver: RunningReceiver, ext4_disk: Path
) -> None:
    with RawPeer.connect(receiver.port) as peer:
        peer.associate(associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
        for attempt in range(1, ATTEMPTS + 1):
            uid, dataset = streamed_instance(attempt)
            filler = fill(ext4_disk, leave=DEFAULT_FLUSH_BYTES // 4)
            try:
                outcome = store_and_look_at_the_answer(
                    peer, receiver, ext4_disk, dataset, uid, attempt
                )
            finally:
                filler.unlink()
            assert outcome == (0xA700, [], []), f"attempt {attempt}"
        # Space again: the association goes on and stores.
        uid, dataset = streamed_instance(ATTEMPTS + 1)
        assert peer.c_store(dataset, uid, message_id=ATTEMPTS + 1) == 0x0000
        peer.release()
    assert [p.name for p in receiver.stored_files()] == [f"{ATTEMPTS + 1:04d}-{uid}.dcm"]
    receiver.wait_for_log(r"refused: status A700 .*No space left on device")
