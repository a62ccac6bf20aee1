"""What hostile HTTP peers cost the receiver (issue 20): many parts, password guessing.

    .venv/bin/python -m benches.http_hardening parts --parts 100000 --size 10
    .venv/bin/python -m benches.http_hardening parts --parts 300000 --size 0
    .venv/bin/python -m benches.http_hardening guessing --seconds 30 --attackers 32 --cost 12
    .venv/bin/python -m benches.http_hardening guessing --seconds 10 --attackers 8 --cost 5
    .venv/bin/python -m benches.http_hardening journal --series 200
    .venv/bin/python -m benches.http_hardening idle --idle 1100 --limit 1024
    .venv/bin/python -m benches.http_hardening idle --dribble 300 --seconds 30
    .venv/bin/python -m benches.http_hardening trickle --slow 8 --seconds 30

``parts``: one STOW-RS request of ``--parts`` parts of ``--size`` bytes (not DICOM: each
is refused), while another peer sends C-ECHO after C-ECHO on one association
(pynetdicom). Reported: the answer's status and size, the receiver's log lines and RSS
growth, and the C-ECHO round trips during the request (the longest is how long the
event loop was kept from other peers).

``guessing``: ``--attackers`` clients from 127.0.0.2 send wrong Basic passwords for
``--seconds``, each retrying at once whatever the answer (503, 429: a hostile client
ignores Retry-After); meanwhile, from 127.0.0.1, ten known users log in once each
(uncached: each is a real password check). Reported: the users' answers and waits,
the guesses checked per second, the receiver's CPU seconds and WARNING lines.

``journal``: the series journal's cost per series (one entry written, as for the
first instance of each series, and with fsync made durable: the entry and its folder
fsynced, as the executor does before that instance is placed), with and without fsync,
on the filesystem of ``--dir`` (default: a temporary folder under benches/).

``idle``: ``--idle`` HTTP connections that send nothing and ``--dribble`` that send one
byte of a request line a second, against a receiver whose soft *and* hard descriptor
limit is ``--limit`` (prlimit); once they are open, dcmtk's storescu sends a file and a
STOW-RS client one instance. Reported: both outcomes, the receiver's open descriptors,
and how many dribbling connections are still open after ``--seconds``.

``trickle``: ``--slow`` requests (as many as slots) send their headers and then their
body at ~1.6 B/s; a real client then posts one instance, and on 503 waits as
Retry-After says and tries again, for up to ``--seconds``. Reported: its answers and
how long until it was served.

``--source DIR`` runs the receiver from another checkout (``git archive main | tar -x
-C DIR``), for numbers before a change.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benches._receiver import ROOT, start_receiver

STOW = "/dicom-web/studies"


def _status(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _receiver(  # type: ignore[no-untyped-def]
    tmp: Path, env: dict[str, str], source: Path | None, command: list[str] | None = None
):
    full = {
        "OXIDICOM_DICOMWEB_PORT": "0",
        "OXIDICOM_DICOMWEB_ADDRESS": "127.0.0.1",
        "OXIDICOM_FSYNC": "false",
        "OXIDICOM_LOG_LEVEL": "INFO",
        **env,
    }
    if source is not None:
        full["PYTHONPATH"] = str(source)
    receiver = start_receiver(tmp, full, command=command)
    match = receiver.wait_for_log(r"DICOMweb STOW-RS at https?://[^:]+:(\d+)/")
    return receiver, int(match.group(1))


# -- parts -------------------------------------------------------------------------------


class EchoLoop(threading.Thread):
    """C-ECHO after C-ECHO on one association; the round trip of each, with its start."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        from pynetdicom import AE

        ae = AE(ae_title="ECHOLOOP")
        ae.add_requested_context("1.2.840.10008.1.1")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
        association = ae.associate("127.0.0.1", self.port, ae_title="ChRIS")
        assert association.is_established
        self.ready.set()
        while not self.stop.is_set():
            start = time.perf_counter()
            status = association.send_c_echo()
            if "Status" not in status:  # aborted: the receiver is stopping
                return
            self.samples.append((start, time.perf_counter() - start))
        association.release()


def parts(args: argparse.Namespace) -> None:
    boundary = "bench-parts"
    piece = b"x" * args.size
    one = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + piece + b"\r\n"
    body = one * args.parts + f"--{boundary}--\r\n".encode()
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    with tempfile.TemporaryDirectory() as tmp:
        receiver, http_port = _receiver(Path(tmp), {}, args.source)
        try:
            echo = EchoLoop(receiver.port)
            echo.start()
            echo.ready.wait(30)
            time.sleep(1)  # a baseline of round trips before the request
            before = _status(receiver.process.pid)
            lines_before = len(receiver.lines)
            connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=300)
            start = time.perf_counter()
            connection.request("POST", STOW, body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            answer = response.read()
            took = time.perf_counter() - start
            connection.close()
            time.sleep(1)  # the log lines of the request's end
            echo.stop.set()
            echo.join(30)
            after = _status(receiver.process.pid)
            during = [rtt for at, rtt in echo.samples if start <= at <= start + took]
            baseline = [rtt for at, rtt in echo.samples[1:] if at < start]
            print(
                f"{args.parts} parts of {args.size} B ({len(body) / 2**20:.1f} MiB):"
                f" HTTP {response.status}, answer {len(answer)} bytes, {took:.2f} s;"
                f" {len(receiver.lines) - lines_before} log lines;"
                f" RSS {before['VmRSS'] / 1024:.1f} -> {after['VmRSS'] / 1024:.1f} MiB"
                f" (peak {after['VmHWM'] / 1024:.1f} MiB)"
            )
            if during:
                print(
                    f"C-ECHO of another peer during the request: {len(during)} round trips,"
                    f" median {statistics.median(during) * 1000:.1f} ms,"
                    f" longest {max(during) * 1000:.1f} ms"
                    f" (before it: median {statistics.median(baseline) * 1000:.1f} ms,"
                    f" longest {max(baseline) * 1000:.1f} ms)"
                )
        finally:
            receiver.stop()


# -- guessing ----------------------------------------------------------------------------


def _post_auth(port: int, source: str, user: str, password: str) -> tuple[int, float]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=120, source_address=(source, 0)
    )
    start = time.perf_counter()
    try:
        connection.request(
            "POST",
            STOW,
            body=b"--b--\r\n",
            headers={
                "Content-Type": 'multipart/related; type="application/dicom"; boundary=b',
                "Authorization": f"Basic {token}",
            },
        )
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        status = 0
    finally:
        connection.close()
    return status, time.perf_counter() - start


def guessing(args: argparse.Namespace) -> None:
    import bcrypt

    users = {f"USER{n}": f"secret-{n}" for n in range(10)}
    users["VICTIM"] = "right"
    with tempfile.TemporaryDirectory() as tmp:
        lines = [
            f"{name}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(args.cost)).decode()}"
            for name, pw in users.items()
        ]
        users_file = Path(tmp, "users")
        users_file.write_text("\n".join(lines) + "\n")
        receiver, port = _receiver(
            Path(tmp, "rx"), {"OXIDICOM_DICOMWEB_USERS_FILE": str(users_file)}, args.source
        )
        try:
            stop = threading.Event()
            counts: dict[int, int] = {}
            lock = threading.Lock()

            def attacker(n: int) -> None:
                guess = 0
                while not stop.is_set():
                    guess += 1
                    status, _ = _post_auth(port, "127.0.0.2", "VICTIM", f"guess-{n}-{guess}")
                    with lock:
                        counts[status] = counts.get(status, 0) + 1

            cpu_before = _cpu_seconds(receiver.process.pid)
            warnings_before = sum(" WARNING " in line for line in receiver.lines)
            threads = [
                threading.Thread(target=attacker, args=(n,), daemon=True)
                for n in range(args.attackers)
            ]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            time.sleep(min(3.0, args.seconds / 3))  # the attack is on before the users come
            logins = []
            for name, password in list(users.items())[:10]:
                logins.append(_post_auth(port, "127.0.0.1", name, password))
                if time.perf_counter() - start > args.seconds:
                    break
            remaining = args.seconds - (time.perf_counter() - start)
            if remaining > 0:
                time.sleep(remaining)
            stop.set()
            for thread in threads:
                thread.join(130)
            took = time.perf_counter() - start
            cpu = _cpu_seconds(receiver.process.pid) - cpu_before
            warnings = sum(" WARNING " in line for line in receiver.lines) - warnings_before
            checked = counts.get(401, 0)
            print(
                f"{args.attackers} attackers, bcrypt cost {args.cost}, {took:.0f} s: answers"
                f" {dict(sorted(counts.items()))}; {checked / took:.1f} wrong passwords"
                f" checked per second; receiver CPU {cpu:.1f} s; {warnings} WARNING lines"
            )
            print(
                "known users from another address, one login each (status, seconds): "
                + ", ".join(f"{status} {wait:.2f}" for status, wait in logins)
            )
        finally:
            receiver.stop()


# -- journal -----------------------------------------------------------------------------


def journal(args: argparse.Namespace) -> None:
    from oxidicom.notify.journal import JournalEntry, SeriesJournal

    base = Path(args.dir or tempfile.mkdtemp(dir=ROOT / "benches", prefix="journal-"))
    try:
        for fsync in (False, True):
            outbox = base / f"outbox-{fsync}"
            journal = SeriesJournal(outbox, base / "files", fsync=fsync)
            journal.prepare()
            entry = JournalEntry("main2", {"path": "SERVICES/PACS/X/series", "ndicom": 0})
            start = time.perf_counter()
            for n in range(args.series):
                durable = journal.record(f"a-{n}", entry)
                if durable is not None:
                    durable()  # what the executor runs before the first file is placed
            took = time.perf_counter() - start
            print(
                f"fsync={fsync}: {took / args.series * 1000:.2f} ms per series"
                f" ({args.series} entries on {base})"
            )
            for n in range(args.series):
                journal.forget(f"a-{n}")
            journal.release()
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)


# -- idle --------------------------------------------------------------------------------


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def idle(args: argparse.Namespace) -> None:
    import resource
    import subprocess
    import sys

    from tests.dicom_factory import mr_instance, write_part10
    from tests.dicomweb_helpers import multipart, part10

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    command = ["/usr/bin/prlimit", f"--nofile={args.limit}:{args.limit}", sys.executable]
    command += ["-m", "oxidicom"]
    with tempfile.TemporaryDirectory() as tmp:
        receiver, http_port = _receiver(Path(tmp, "rx"), {}, args.source, command)
        pid = receiver.process.pid  # prlimit execs the receiver: the same process
        sockets: list[socket.socket] = []
        dribblers: list[socket.socket] = []
        try:
            for _ in range(args.idle):
                sockets.append(socket.create_connection(("127.0.0.1", http_port)))
            for _ in range(args.dribble):
                dribbler = socket.create_connection(("127.0.0.1", http_port))
                dribbler.setblocking(False)
                dribblers.append(dribbler)
            start = time.perf_counter()
            print(
                f"{args.idle} idle + {args.dribble} dribbling connections open;"
                f" receiver descriptors: {_open_fds(pid)} (limit {args.limit})"
            )
            source = write_part10(mr_instance(), Path(tmp, "one.dcm"))
            sent = subprocess.run(
                [
                    "/usr/bin/storescu",
                    "-aec",
                    "ChRIS",
                    "127.0.0.1",
                    str(receiver.port),
                    str(source),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            print(f"storescu: exit {sent.returncode} {sent.stderr.strip()[:120]}")
            body, content_type = multipart([part10(mr_instance(instance_number=2))])
            try:
                connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=30)
                connection.request("POST", STOW, body=body, headers={"Content-Type": content_type})
                print(f"STOW-RS: HTTP {connection.getresponse().status}")
                connection.close()
            except (OSError, http.client.HTTPException) as error:
                print(f"STOW-RS: failed: {error!r}")
            line = b"POST /dicom-web/studies HTTP/1.1\r\n"
            sent_bytes = 0
            while time.perf_counter() - start < args.seconds:
                for dribbler in dribblers:
                    with contextlib.suppress(OSError):
                        dribbler.send(line[sent_bytes % len(line) :][:1])
                sent_bytes += 1
                time.sleep(1)
            still = 0
            for dribbler in dribblers:
                try:
                    dribbler.send(b"x")
                    data = dribbler.recv(1)
                    still += 1 if data != b"" else 0
                except BlockingIOError:
                    still += 1
                except OSError:
                    pass
            print(
                f"after {args.seconds:.0f} s: {still} of {args.dribble} dribbling connections"
                f" still open; receiver descriptors: {_open_fds(pid)};"
                f" EMFILE lines: {sum('out of file descriptors' in x for x in receiver.lines)}"
            )
        finally:
            for sock in sockets + dribblers:
                sock.close()
            receiver.stop()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- trickle -------------------------------------------------------------------------------


def trickle(args: argparse.Namespace) -> None:
    from tests.dicom_factory import mr_instance
    from tests.dicomweb_helpers import multipart, part10

    with tempfile.TemporaryDirectory() as tmp:
        receiver, http_port = _receiver(
            Path(tmp), {"OXIDICOM_LISTENER_THREADS": str(args.slow)}, args.source
        )
        slow: list[socket.socket] = []
        stop = threading.Event()
        try:
            for n in range(args.slow):
                body, content_type = multipart([part10(mr_instance(instance_number=n + 10))])
                sock = socket.create_connection(("127.0.0.1", http_port))
                sock.sendall(
                    f"POST {STOW} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                )
                slow.append(sock)

            def dribble() -> None:
                while not stop.wait(0.6):  # ~1.6 B/s each
                    for sock in slow:
                        with contextlib.suppress(OSError):
                            sock.send(b"-")

            threading.Thread(target=dribble, daemon=True).start()
            receiver.wait_for_log_count(r"STOW-RS request from", args.slow)
            body, content_type = multipart([part10(mr_instance(instance_number=1))])
            start = time.perf_counter()
            answers = []
            while time.perf_counter() - start < args.seconds:
                connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=60)
                connection.request("POST", STOW, body=body, headers={"Content-Type": content_type})
                response = connection.getresponse()
                response.read()
                connection.close()
                answers.append(response.status)
                if response.status != 503:
                    break
                time.sleep(float(response.getheader("Retry-After") or 1))
            took = time.perf_counter() - start
            counts = {status: answers.count(status) for status in sorted(set(answers))}
            print(
                f"{args.slow} trickling requests hold the {args.slow} slots; a real client:"
                f" answers {counts}, last {answers[-1]}, after {took:.1f} s"
            )
        finally:
            stop.set()
            for sock in slow:
                sock.close()
            receiver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("parts", "guessing", "journal", "idle", "trickle"))
    parser.add_argument("--slow", type=int, default=8)
    parser.add_argument("--idle", type=int, default=0)
    parser.add_argument("--dribble", type=int, default=0)
    parser.add_argument("--limit", type=int, default=1024)
    parser.add_argument("--parts", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--attackers", type=int, default=32)
    parser.add_argument("--cost", type=int, default=12)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--source", type=Path, help="run the receiver from this checkout")
    args = parser.parse_args()
    socket.setdefaulttimeout(300)
    cases = {
        "parts": parts,
        "guessing": guessing,
        "journal": journal,
        "idle": idle,
        "trickle": trickle,
    }
    cases[args.case](args)


if __name__ == "__main__":
    main()
