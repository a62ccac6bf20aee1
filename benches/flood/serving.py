"""One receiver of the flood's table, started and serving, and its senders, for the
benches that count what a sending costs (benches/wakeups.py, benches/cross_cpu.py,
benches/cpu_split.py)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from benches.flood.measure import wait_log_lines
from benches.flood.procs import free_port, kill_group, spawn, wait_listening
from benches.flood.receivers import Receiver, base_env


@contextlib.contextmanager
def serving(receiver: Receiver, folder: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``receiver`` writing into ``folder``, every worker up and its first association
    (a C-ECHO, which pays its lazy imports) behind it: its process and port."""
    port = free_port()
    command, env = receiver.command(port, folder)
    log = folder / "receiver.log"
    with open(log, "wb") as out:
        process = spawn(command, env=env, cwd=folder, stdout=out, stderr=out)
    try:
        wait_listening(port, process, timeout=30)
        if receiver.ready_lines is not None:
            wait_log_lines(log, *receiver.ready_lines, process, timeout=30)
        echo = ["echoscu", "-aec", receiver.aet, "127.0.0.1", str(port)]
        subprocess.run(echo, check=True, capture_output=True)
        yield process, port
    finally:
        kill_group(process)


def start_senders(
    receiver: Receiver, port: int, files: list[str], senders: int, passes: int
) -> list[subprocess.Popen[bytes]]:
    """``senders`` dcmtk ``storescu`` (TCP_NODELAY), each sending its share of ``files``
    ``passes`` times in one association; ``senders * passes * (len(files) // senders)``
    instances in all."""
    share = len(files) // senders
    send = ["storescu", "-aec", receiver.aet, "127.0.0.1", str(port)]
    return [
        subprocess.Popen(
            send + files[n * share : (n + 1) * share] * passes,
            env=base_env() | {"TCP_NODELAY": "1"},
            stdout=subprocess.DEVNULL,
        )
        for n in range(senders)
    ]
