"""With OXIDICOM_FSYNC=true the series journal entry survives a power cut before the
success of the series' first instance leaves (issue 20, 5): the order, seen by strace."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from oxidicom.storage.writer import memory_backed
from tests.dicom_factory import mr_instance, write_part10
from tests.integration.conftest import IN_CI, require_tool
from tests.integration.receiver import start_receiver

pytestmark = pytest.mark.integration

STRACE = "/usr/bin/strace"
STORESCU = "/usr/bin/storescu"
_LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<rest>.*)$")
_CALL = re.compile(r"^(?P<name>\w+)\((?P<args>.*)$")
_RESUMED = re.compile(r"^<\.\.\. (?P<name>\w+) resumed>")


@dataclass(frozen=True)
class Call:
    """One system call: where it started and completed in the trace, and its arguments."""

    started: int
    completed: int
    name: str
    args: str


def calls(trace: str) -> list[Call]:
    """The calls of an ``strace -f -yy`` output, an unfinished call joined to its end."""
    found: list[Call] = []
    unfinished: dict[str, tuple[int, str, str]] = {}
    for index, line in enumerate(trace.splitlines()):
        match = _LINE.match(line)
        if match is None:
            continue
        pid, rest = match["pid"], match["rest"]
        if _RESUMED.match(rest):
            if pid in unfinished:
                started, name, args = unfinished.pop(pid)
                found.append(Call(started, index, name, args + rest))
            continue
        call = _CALL.match(rest)
        if call is None:
            continue
        if rest.endswith("<unfinished ...>"):
            unfinished[pid] = (index, call["name"], call["args"])
        else:
            found.append(Call(index, index, call["name"], call["args"]))
    return found


@pytest.mark.parametrize(
    "rows",
    [64, 2048],  # written whole (9 KB), or streamed in batches (8 MiB): two paths of the writer
)
def test_the_journal_entry_and_its_folder_are_fsynced_before_the_c_store_rsp(
    tmp_path: Path, rows: int
) -> None:
    require_tool(STRACE)
    require_tool(STORESCU)
    probe = subprocess.run([STRACE, "-qq", "-o", os.devnull, "/bin/true"], capture_output=True)
    if probe.returncode != 0:
        message = f"strace cannot trace here: {probe.stderr.decode(errors='replace').strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    if memory_backed(tmp_path):
        pytest.skip(f"{tmp_path} is in memory: fsync is skipped there by design")
    trace = tmp_path / "strace.txt"
    command = [
        STRACE, "-f", "-yy", "-qq", "-o", str(trace),
        "-e", "trace=fsync,fdatasync,rename,renameat,renameat2,write,writev,sendto,sendmsg",
        sys.executable, "-m", "oxidicom",
    ]  # fmt: skip
    receiver = start_receiver(tmp_path / "rx", {"OXIDICOM_FSYNC": "true"}, command=command)
    try:
        source = write_part10(mr_instance(rows=rows, columns=rows), tmp_path / "one.dcm")
        sent = subprocess.run(
            [STORESCU, "-aec", "ChRIS", "127.0.0.1", str(receiver.port), str(source)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        assert sent.returncode == 0, sent.stderr
    finally:
        # SIGTERM to the receiver, strace's child: strace exits with its status.
        pid = receiver.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for child in children:
            os.kill(int(child), signal.SIGTERM)
        assert receiver.stop() == 0
    traced = calls(trace.read_text())
    entry = re.compile(r"/\.journal/[0-9a-f.]+/[^/>\"]+\.json")
    [placed] = [c for c in traced if c.name.startswith("rename") and entry.search(c.args)]
    entry_synced = [c for c in traced if c.name in ("fsync", "fdatasync") and entry.search(c.args)]
    folder = re.compile(r"/\.journal/[0-9a-f.]+>")
    folder_synced = [
        c for c in traced if c.name in ("fsync", "fdatasync") and folder.search(c.args)
    ]
    assert entry_synced, "the journal entry is never fsynced"
    assert folder_synced, "the journal folder is never fsynced"
    entry_done = min(c.completed for c in entry_synced if c.completed > placed.completed)
    folder_done = min(c.completed for c in folder_synced if c.completed > entry_done)
    peer = f"127.0.0.1:{receiver.port}->"
    answers = [
        c
        for c in traced
        if c.name in ("write", "writev", "sendto", "sendmsg")
        and peer in c.args
        and c.started > placed.completed
    ]
    # The first thing sent to the peer after the entry was placed is the C-STORE-RSP.
    assert answers, "no answer to the peer in the trace"
    assert answers[0].started > folder_done, "the success left before the journal was durable"
