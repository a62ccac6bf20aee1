"""SIGKILL mid-instance: no partial file at a final path; the next start cleans up."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from oxidicom.dimse.commands import CommandField, encode_request
from oxidicom.storage.writer import DEFAULT_FLUSH_BYTES, TMP_DIR_NAME
from tests.integration.raw_peer import EXPLICIT_LE, MR_STORAGE, RawPeer, associate_rq, message
from tests.integration.receiver import start_receiver
from tests.integration.test_disk_faults import instance

pytestmark = pytest.mark.integration


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for a condition on the filesystem (no notification exists for it here)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.01)


def partial_files(tmp_dir: Path) -> list[Path]:
    """Temporary instance files, in whichever receiver's folder they are."""
    return sorted(tmp_dir.rglob("*.part"))


def test_sigkill_mid_instance_leaves_no_partial_file_and_restart_cleans_up(
    tmp_path: Path,
) -> None:
    receiver = start_receiver(tmp_path)
    tmp_dir = receiver.files_root / TMP_DIR_NAME
    uid, dataset = instance(4 * DEFAULT_FLUSH_BYTES, 1)
    command = encode_request(
        CommandField.C_STORE_RQ,
        1,
        affected_sop_class_uid=MR_STORAGE,
        affected_sop_instance_uid=uid,
        has_dataset=True,
    )
    stream = message(1, command, dataset, 16000)
    half = len(stream) // 2  # well past the flush threshold: the temp file exists
    with RawPeer.connect(receiver.port) as peer:
        peer.associate(associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
        peer.send(stream[:half])
        # The kill lands inside the instance: its temp file exists and holds part of it.
        wait_until(lambda: any(f.stat().st_size > 0 for f in partial_files(tmp_dir)))
        receiver.process.send_signal(signal.SIGKILL)
        assert receiver.process.wait(30) == -signal.SIGKILL
        assert peer.read_until_closed() == []
    assert receiver.stored_files() == []
    [stale] = partial_files(tmp_dir)
    assert 0 < stale.stat().st_size < len(dataset)

    again = start_receiver(tmp_path)
    try:
        again.wait_for_log(r"removed 1 temporary file\(s\) left by")
        assert partial_files(tmp_dir) == []
        # Only the new receiver's own (locked, empty) folder is left.
        assert len([p for p in tmp_dir.iterdir() if p.is_dir()]) == 1
        assert [p.name for p in tmp_dir.rglob("*") if p.is_file()] == [".lock"]
        with RawPeer.connect(again.port) as peer:
            peer.associate(associate_rq(contexts=((MR_STORAGE, EXPLICIT_LE),)))
            assert peer.c_store(dataset, uid) == 0x0000
            peer.release()
        [stored] = again.stored_files()
        assert stored.stat().st_size > len(dataset)
    finally:
        assert again.stop() == 0
