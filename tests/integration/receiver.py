"""Start the real receiver as a separate process, the way an operator does."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_LISTENING = re.compile(r"listening on (?P<host>\S+):(?P<port>\d+)")
_SUPERVISOR = re.compile(r"oxidicom supervisor: (\d+) workers")


@dataclass
class RunningReceiver:
    process: subprocess.Popen[str]
    port: int
    files_root: Path
    outbox_dir: Path
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition | None = None

    @property
    def pacs_root(self) -> Path:
        return self.files_root / "SERVICES" / "PACS"

    def stored_files(self) -> list[Path]:
        if not self.pacs_root.exists():
            return []
        return sorted(p for p in self.pacs_root.rglob("*") if p.is_file())

    def log(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Block until a log line matches ``pattern`` (the receiver says so, no sleeping)."""
        regex = re.compile(pattern)
        assert self._changed is not None
        with self._changed:
            while True:
                for line in self.lines:
                    match = regex.search(line)
                    if match:
                        return match
                if self.process.poll() is not None and not self._reader_alive():
                    raise AssertionError(f"receiver exited; log:\n{self.log_unlocked()}")
                if not self._changed.wait(timeout):
                    raise AssertionError(
                        f"no log line matching {pattern!r}; log:\n{self.log_unlocked()}"
                    )

    def wait_for_log_count(self, pattern: str, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` log lines match ``pattern`` (e.g. every worker started)."""
        regex = re.compile(pattern)
        assert self._changed is not None
        with self._changed:
            while sum(1 for line in self.lines if regex.search(line)) < count:
                if self.process.poll() is not None and not self._reader_alive():
                    raise AssertionError(f"receiver exited; log:\n{self.log_unlocked()}")
                if not self._changed.wait(timeout):
                    raise AssertionError(
                        f"fewer than {count} lines matching {pattern!r}; log:\n"
                        f"{self.log_unlocked()}"
                    )

    def wait_for_log_where(
        self, condition: Callable[[str], bool], what: str, timeout: float = 30.0
    ) -> None:
        """Block until ``condition`` holds of the whole log so far (``what``: for the error)."""
        assert self._changed is not None
        with self._changed:
            while not condition(self.log_unlocked()):
                if self.process.poll() is not None and not self._reader_alive():
                    raise AssertionError(f"receiver exited; log:\n{self.log_unlocked()}")
                if not self._changed.wait(timeout):
                    raise AssertionError(f"no {what}; log:\n{self.log_unlocked()}")

    def log_unlocked(self) -> str:
        return "\n".join(self.lines)

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def processes(self) -> int:
        """Receiver processes serving (its workers, or itself alone), as its supervisor
        said at its start. Per-process log lines (summarized warnings, the shutdown's
        wait) come once from each."""
        with self._lock:
            for line in self.lines:
                found = _SUPERVISOR.search(line)
                if found:
                    return int(found.group(1))
        return 1

    def serving_pids(self) -> list[int]:
        """The processes that serve associations: the receiver's workers, or the receiver
        alone (with OXIDICOM_WORKERS=1, or one CPU). Memory and descriptors are theirs."""
        workers = child_processes(self.process.pid)
        return sorted(workers) if workers else [self.process.pid]

    def signal_all(self, sig: int) -> None:
        """``sig`` to the receiver and its worker processes at once: a fault of the whole
        receiver (SIGKILL as a container's processes die with its first, or systemd kills
        the unit's cgroup; SIGSTOP as a frozen pod)."""
        for pid in child_processes(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        self.process.send_signal(sig)

    def kill9(self, timeout: float = 30.0) -> int:
        """SIGKILL to the whole receiver (:meth:`signal_all`); its exit status."""
        self.signal_all(signal.SIGKILL)
        return self.process.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"receiver still running {timeout:.0f} s after signal {sig}; log:\n{self.log()}"
            ) from None
        if self._reader is not None:
            self._reader.join(10)
        return code


def child_processes(pid: int) -> set[int]:
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


#: Receivers started since the running test began (tests/conftest.py shows the end of
#: their logs when it fails).
STARTED: list[RunningReceiver] = []


def start_receiver(
    tmp: Path,
    env: dict[str, str] | None = None,
    *,
    timeout: float = 30.0,
    command: list[str] | None = None,
) -> RunningReceiver:
    tmp.mkdir(parents=True, exist_ok=True)
    files_root = tmp / "files"
    outbox_dir = tmp / "outbox"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OXIDICOM_", "OTEL_"))}
    full_env.update(
        {
            "OXIDICOM_FILES_ROOT": str(files_root),
            "OXIDICOM_OUTBOX_DIR": str(outbox_dir),
            "OXIDICOM_LISTENER_PORT": "0",
            "OXIDICOM_LISTENER_ADDRESS": "127.0.0.1",
            "OXIDICOM_LOG_LEVEL": "DEBUG",
            # Readable lines for the tests' regular expressions; tests/test_logs.py runs
            # the default (auto: JSON when stderr is not a terminal).
            "OXIDICOM_LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
    )
    full_env.update(env or {})
    process = subprocess.Popen(
        command or [sys.executable, "-m", "oxidicom"],
        env=full_env,
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    receiver = RunningReceiver(process, 0, files_root, outbox_dir)
    receiver._changed = threading.Condition(receiver._lock)
    STARTED.append(receiver)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with receiver._changed:  # type: ignore[union-attr]
                receiver.lines.append(line.rstrip("\n"))
                receiver._changed.notify_all()  # type: ignore[union-attr]
        with receiver._changed:  # type: ignore[union-attr]
            receiver._changed.notify_all()  # type: ignore[union-attr]

    receiver._reader = threading.Thread(target=read, daemon=True)
    receiver._reader.start()
    try:
        match = receiver.wait_for_log(_LISTENING.pattern, timeout)
        # Several workers: every one serving (each says so once started).
        receiver.wait_for_log_count(_LISTENING.pattern, receiver.processes(), timeout)
    except AssertionError:
        process.kill()
        raise
    receiver.port = int(match.group("port"))
    return receiver
