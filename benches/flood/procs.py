"""Processes of the bench: each in a process group of its own, all killed on the way out."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil

_LIVE: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout: IO[bytes] | int | None = subprocess.DEVNULL,
    stderr: IO[bytes] | int | None = subprocess.DEVNULL,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new session (its own process group), remembered for kill_all."""
    process = subprocess.Popen(
        list(command),
        env=dict(env) if env is not None else None,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        start_new_session=True,
    )
    _LIVE[process.pid] = process
    return process


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of ``process`` (while it runs) and reap ``process``.

    Once the group leader is reaped its id may be reused, so an exited leader is left
    alone: the receivers run under benches/_rusage.py, which reaps its whole tree first.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    _LIVE.pop(process.pid, None)


def forget(process: subprocess.Popen[bytes]) -> None:
    """``process`` has exited; it no longer needs killing (its group may, see kill_group)."""
    _LIVE.pop(process.pid, None)


def kill_all() -> None:
    """Kill every process group this bench started and has not reaped."""
    for process in list(_LIVE.values()):
        kill_group(process)


atexit.register(kill_all)


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _has_socket(port: int, state: str) -> bool:
    """True when a TCP socket on local ``port`` is in ``state`` (hex, from /proc/net)."""
    wanted = f":{port:04X} "
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == state and (fields[1] + " ").endswith(wanted):
                    return True
    return False


def is_listening(port: int) -> bool:
    """True when some socket listens on TCP ``port`` (no connection is made)."""
    return _has_socket(port, "0A")


def has_connection(port: int) -> bool:
    """True once some connection to TCP ``port`` is established."""
    return _has_socket(port, "01")


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until ``port`` is listening; raise if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not is_listening(port):
        if process.poll() is not None:
            raise RuntimeError(f"receiver exited with status {process.returncode} at start")
        if time.monotonic() > deadline:
            raise RuntimeError(f"receiver not listening on port {port} after {timeout:.0f} s")
        time.sleep(0.02)


def reap(process: subprocess.Popen[bytes]) -> float | None:
    """CPU seconds ``process`` used in all, once it has exited (reaping it); else None.

    ``os.wait4`` instead of ``Popen.poll``: the kernel's accounting of the child (user +
    system, to the microsecond) comes with its exit status, which is set on ``process``.
    """
    if process.returncode is not None:
        return None
    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    if pid == 0:
        return None
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _schedstats(pid: int) -> Iterator[tuple[int, list[int]]]:
    """(thread id, ``/proc/PID/task/TID/schedstat``) of each live thread of ``pid``: ns on a
    CPU, ns waiting for one, time slices."""
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat") as f:
                yield int(task), [int(field) for field in f.read().split()]


def cpu_seconds(pid: int) -> float:
    """CPU seconds a live process has used so far, all its threads (``/proc/PID/schedstat``)."""
    return sum(stat[0] for _, stat in _schedstats(pid)) / 1e9


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants, with the children each has reaped.

    A descendant that exited and was reaped counts in its parent's ``cutime``/``cstime``,
    so the difference of two readings is the CPU the tree used in between, forks included.
    """
    return sum(tree_cpu_times(pid))


def tree_cpu_times(pid: int) -> tuple[float, float]:
    """:func:`tree_cpu_seconds` split into user and system seconds."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    user = system = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            t = process.cpu_times()
            user += t.user + t.children_user
            system += t.system + t.children_system
    return user, system


def tree_waits_ns(pid: int) -> dict[int, int]:
    """Run-queue wait of every thread of ``pid`` and its live descendants, by thread id.

    The second field of ``/proc/PID/task/TID/schedstat``: nanoseconds the thread was
    runnable but not running, waiting for a CPU. Unlike CPU time it is not summed into
    the parent when a child exits, so :class:`WaitSampler` samples it while they live.
    """
    try:
        root = psutil.Process(pid)
        pids = [pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return {}
    return {tid: stat[1] for process in pids for tid, stat in _schedstats(process)}


class WaitSampler:
    """How long a process tree waited for a CPU from now on: samples of ``tree_waits_ns``.

    A thread seen at the start counts from its reading then; one born later counts whole.
    A child that exits between two samples loses what it waited since the last one, so
    :meth:`sample` is called every ``interval`` seconds at most (reading a few small files
    per thread: cheap, but not free on a machine the flood keeps busy).
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self._first = tree_waits_ns(pid)
        self._last = dict(self._first)
        self._at = time.monotonic()

    def sample(self, force: bool = False) -> None:
        """Read the tree again, unless the last reading is younger than ``interval``."""
        now = time.monotonic()
        if not force and now - self._at < self.interval:
            return
        self._at = now
        self._last.update(tree_waits_ns(self.pid))

    def seconds(self) -> float:
        """Run-queue wait of the tree since this sampler was made, as last sampled."""
        waited = sum(ns - self._first.get(tid, 0) for tid, ns in self._last.items())
        return waited / 1e9


def tree_rss_hwm_kib(pid: int) -> int:
    """Largest VmHWM (peak RSS) among ``pid`` and its live descendants, in KiB."""
    best = 0
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for process in processes:
        with contextlib.suppress(OSError), open(f"/proc/{process.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]))
    return best
