"""One measurement: a fresh receiver, C storescu senders, every file checked at its place."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benches.flood import BENCHES
from benches.flood.datasets import DataSet, SourceFile
from benches.flood.procs import (
    WaitSampler,
    cpu_seconds,
    forget,
    free_port,
    has_connection,
    kill_group,
    reap,
    spawn,
    tree_cpu_seconds,
    tree_rss_hwm_kib,
    wait_listening,
)
from benches.flood.receivers import Receiver, base_env

STORESCU = shutil.which("storescu") or "/usr/bin/storescu"
MIB = 1024 * 1024
TAIL = 64 * 1024


@dataclass
class Measurement:
    receiver: str
    dataset: str
    concurrency: int
    repeat: int
    nagle: bool
    instances: int  # files sent, every pass counted
    payload_bytes: int
    passes: int = 1  # each sender sent its share this many times
    ok: bool = False
    error: str = ""
    wall_s: float = 0.0  # first connection to last file at its final path
    senders_start_s: float = 0.0  # senders started to first connection (not in wall_s)
    inst_per_s: float = 0.0
    mib_per_s: float = 0.0
    cpu_s: float = 0.0  # receiver tree, flood only (psutil, first connect to last file)
    cpu_total_s: float = 0.0  # receiver tree, start to exit (getrusage of the wrapper)
    senders_cpu_s: float = 0.0  # every storescu, first connection to its exit (wait4)
    # receiver tree: runnable but not running, waiting for a CPU (schedstat, sampled)
    cpu_wait_s: float = 0.0
    peak_rss_kib: int = 0  # largest single process of the tree
    stored: int = 0
    stored_bytes: int = 0
    storescu_status: list[int] = field(default_factory=list)
    started: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _sender(
    receiver: Receiver,
    port: int,
    files: list[SourceFile],
    passes: int,
    n: int,
    nagle: bool,
    log: Path,
) -> subprocess.Popen[bytes]:
    env = base_env() if nagle else base_env() | {"TCP_NODELAY": "1"}
    argv = [STORESCU, "-aet", "BENCH", "-aec", receiver.aet, "127.0.0.1", str(port)]
    argv += [str(f.path) for f in files] * passes  # one association, pass after pass
    with open(log / f"storescu-{n}.log", "wb") as out:
        return spawn(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def _scan(receiver: Receiver, out: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if out.exists():
        for path in receiver.stored(out):
            try:
                found[receiver.uid_of(path)] = path
            except IndexError:
                found[path.name] = path
    return found


def _verify(found: dict[str, Path], dataset: DataSet) -> tuple[str, int]:
    """'' when every instance is stored, non-empty, and samples end as their source."""
    expected = {f.sop_instance_uid for f in dataset.files}
    missing = expected - found.keys()
    extra = found.keys() - expected
    if missing or extra:
        return f"{len(missing)} missing, {len(extra)} unexpected files", 0
    sizes = {uid: path.stat().st_size for uid, path in found.items()}
    empty = [uid for uid, size in sizes.items() if size == 0]
    if empty:
        return f"{len(empty)} empty files", 0
    files = dataset.files
    samples = {files[0], files[-1], files[len(files) // 2], max(files, key=lambda f: f.size)}
    for source in samples:
        stored = found[source.sop_instance_uid]
        n = min(TAIL, source.size // 2)  # data set bytes only: the file meta may differ
        with open(source.path, "rb") as a, open(stored, "rb") as b:
            a.seek(-n, 2)
            b.seek(-n, 2)
            if a.read(n) != b.read(n):
                return f"{stored.name}: last {n} bytes differ from the source", 0
    return "", sum(sizes.values())


def _stop(wrapper: subprocess.Popen[bytes], grace: float) -> None:
    if wrapper.poll() is None:
        wrapper.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            wrapper.wait(timeout=grace)
    kill_group(wrapper)  # whatever is left of its group


def measure(
    receiver: Receiver,
    dataset: DataSet,
    concurrency: int,
    repeat: int,
    work: Path,
    *,
    nagle: bool = False,
    timeout: float = 600.0,
    keep: bool = False,
    passes: int = 1,
) -> Measurement:
    """Flood a fresh ``receiver`` with ``dataset`` from ``concurrency`` storescu at once.

    With ``passes`` > 1 every sender sends its share that many times in its association:
    the later passes replace the files of the first (each receiver here overwrites a file
    of the same name), so the data set and the check of the stored files stay the same
    while the flood lasts long enough to measure on a fast machine.
    """
    m = Measurement(
        receiver.name,
        dataset.name + ("-nagle" if nagle else ""),
        concurrency,
        repeat,
        nagle,
        len(dataset.files) * passes,
        dataset.payload_bytes * passes,
        passes=passes,
        started=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    tag = f"{m.dataset}-c{concurrency}-r{repeat}-{receiver.name}"
    run_dir = work / tag
    if run_dir.exists():
        shutil.rmtree(run_dir)
    out, logs = run_dir / "out", run_dir / "logs"
    out.mkdir(parents=True)
    logs.mkdir()
    port = free_port()
    command, env = receiver.command(port, out)
    rusage_file = run_dir / "rusage.json"
    wrapper_argv = [sys.executable, str(BENCHES / "_rusage.py"), str(rusage_file), "--"]
    with open(logs / "receiver.log", "wb") as log:
        # In its own folder, not the checkout's: `python -m oxidicom` puts the working
        # directory first on sys.path, so from the checkout a tree on PYTHONPATH
        # (OXIDICOM_BENCH_CMD) would silently run the checkout's code instead.
        wrapper = spawn(
            wrapper_argv + command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=run_dir,
        )
    senders: list[subprocess.Popen[bytes]] = []
    try:
        wait_listening(port, wrapper, timeout=30)
        if receiver.ready_lines is not None:
            wait_log_lines(logs / "receiver.log", *receiver.ready_lines, wrapper, timeout=30)
        shares = [list(dataset.files[i::concurrency]) for i in range(concurrency)]
        cpu0 = tree_cpu_seconds(wrapper.pid)
        waits = WaitSampler(wrapper.pid)
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        senders = [
            _sender(receiver, port, share, passes, n, nagle, logs) for n, share in enumerate(shares)
        ]
        # The clock starts at the first connection: storescu reads every file it is given
        # before it connects, and that is the sender's cost, not the receiver's.
        while not has_connection(port) and any(s.poll() is None for s in senders):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no sender connected in {timeout:.0f} s")
            time.sleep(0.0005)
        t_connect = time.perf_counter()
        m.senders_start_s = t_connect - t0
        # What the senders used before (reading their files) is not the flood's.
        before = {s.pid: cpu_seconds(s.pid) for s in senders if s.returncode is None}
        while any(s.returncode is None for s in senders):
            for s in senders:
                used = reap(s)
                if used is not None:
                    m.senders_cpu_s += used - before.get(s.pid, used)
            if time.monotonic() > deadline:
                raise TimeoutError(f"senders still running after {timeout:.0f} s")
            if wrapper.poll() is not None:
                raise RuntimeError(f"receiver exited with status {wrapper.returncode}")
            waits.sample()
            time.sleep(0.005)
        m.storescu_status = [s.returncode for s in senders]
        for s in senders:
            forget(s)
        # every sender has its last response; wait (briefly) for the files themselves
        settle = time.monotonic() + min(30.0, max(0.0, deadline - time.monotonic()))
        while True:
            t_scan = time.perf_counter()
            found = _scan(receiver, out)
            if len(found) >= len(dataset.files) or time.monotonic() > settle:
                break
            time.sleep(0.02)
        m.wall_s = t_scan - t_connect
        m.cpu_s = tree_cpu_seconds(wrapper.pid) - cpu0
        waits.sample(force=True)
        m.cpu_wait_s = waits.seconds()
        m.peak_rss_kib = tree_rss_hwm_kib(wrapper.pid)
        m.stored = len(found)
        m.inst_per_s = m.instances / m.wall_s
        m.mib_per_s = m.payload_bytes / MIB / m.wall_s
        _stop(wrapper, grace=60)  # its rusage report is written on exit
        problem, m.stored_bytes = _verify(found, dataset)
        if any(m.storescu_status):
            problem = f"storescu exit status {m.storescu_status}; " + problem
        m.error = problem.strip("; ")
        m.ok = not m.error
    except (TimeoutError, RuntimeError, OSError) as e:
        m.error = f"{type(e).__name__}: {e}"
    finally:
        for s in senders:
            if s.poll() is None:
                kill_group(s)
            forget(s)
        _stop(wrapper, grace=10)  # no-op when already stopped
        shutil.rmtree(out, ignore_errors=True)
    if rusage_file.exists():
        usage = json.loads(rusage_file.read_text())
        m.cpu_total_s = float(usage["cpu_s"])
        m.peak_rss_kib = max(m.peak_rss_kib, int(usage["maxrss_kib"]))
    if m.ok and not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return m


def wait_log_lines(
    path: Path, text: str, count: int, process: subprocess.Popen[bytes], timeout: float
) -> None:
    """Wait until ``path`` holds ``count`` lines containing ``text`` (every worker is up)."""
    deadline = time.monotonic() + timeout
    needle = text.encode()
    while path.read_bytes().count(needle) < count:
        if process.poll() is not None:
            raise RuntimeError(f"receiver exited with status {process.returncode} at start")
        if time.monotonic() > deadline:
            raise RuntimeError(f"receiver did not log {count} x {text!r} in {timeout:.0f} s")
        time.sleep(0.02)
