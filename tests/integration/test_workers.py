"""OXIDICOM_WORKERS: several receiver processes accepting on one socket, supervised.

Real processes and real dcmtk senders: every file of concurrent associations lands,
SIGTERM stops every worker and exits 0, a killed worker is started again, a worker that
cannot start stops the whole receiver with its status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from oxidicom.app.settings import SettingsError, load_settings
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.conftest import ECHOSCU, echoscu, require_tool
from tests.integration.receiver import RunningReceiver, start_receiver

pytestmark = pytest.mark.integration

STORESCU = "/usr/bin/storescu"
LISTENING = r"listening on 127\.0\.0\.1:\d+"


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


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
    receiver = start_workers(tmp_path, workers=3)
    workers = children(receiver.process.pid)
    assert len(workers) == 3
    assert receiver.stop(signal.SIGTERM) == 0
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)
    assert receiver.log().count("stopped") >= 3


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
    [("1", 1), ("4", 4), (" 2 ", 2), ("auto", len(os.sched_getaffinity(0)))],
)
def test_workers_setting(tmp_path: Path, value: str, expected: int) -> None:
    assert load_settings({"OXIDICOM_WORKERS": value}, tmp_path).workers == expected


@pytest.mark.parametrize("value", ["0", "-1", "65", "two"])
def test_bad_workers_setting(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="OXIDICOM_WORKERS"):
        load_settings({"OXIDICOM_WORKERS": value}, tmp_path)
