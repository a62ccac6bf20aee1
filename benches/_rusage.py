"""Run a command, reap its whole process tree, write what the tree cost as JSON.

    python benches/_rusage.py OUT.json -- command args...

The wrapper makes itself a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``), so
descendants orphaned by the command (``storescp --fork`` children still running when
their parent is stopped) are reparented to it and reaped here too. SIGTERM and SIGINT are
forwarded to the command. Once the command has exited and every descendant is reaped, it
writes ``{"returncode", "cpu_s", "user_s", "system_s", "maxrss_kib"}`` to OUT.json:
``cpu_s`` is the CPU time of every reaped descendant, ``maxrss_kib`` the peak resident set
size of the largest single descendant (``getrusage(RUSAGE_CHILDREN)``: not the sum of the
tree). Its exit status is the command's.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: _rusage.py OUT.json -- command args...", file=sys.stderr)
        return 2
    out, command = argv[0], argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    child = subprocess.Popen(command)

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    returncode = child.wait()
    while True:  # reap orphans reparented to us
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "returncode": returncode,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "user_s": usage.ru_utime,
        "system_s": usage.ru_stime,
        "maxrss_kib": usage.ru_maxrss,
    }
    with open(out, "w") as f:
        json.dump(report, f)
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
