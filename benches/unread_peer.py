"""A peer that sends requests and never reads a response: the receiver's memory.

One raw-socket peer (receive buffer 4 KiB) associates, then sends C-ECHO-RQs as fast as
the receiver takes them and never reads. Prints the receiver's RSS after every
``--step`` MiB sent, and how the connection ended. Without write-side flow control the
receiver keeps reading and queues every response in memory.

    .venv/bin/python -m benches.unread_peer --mib 200 --seconds 40
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

from benches._receiver import start_receiver
from oxidicom.dimse.commands import CommandField, encode_request
from tests.integration.raw_peer import VERIFICATION, associate_rq, pdata

MIB = 1024 * 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


def hwm_kib(pid: int) -> int:
    """The peak RSS so far."""
    return _status_kib(pid, "VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200, help="stop after sending this much")
    parser.add_argument("--seconds", type=float, default=40, help="give up after this long")
    parser.add_argument("--step", type=int, default=25, help="print RSS every STEP MiB")
    parser.add_argument("--idle-timeout", default="60s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        receiver = start_receiver(Path(tmp), {"OXIDICOM_IDLE_TIMEOUT": args.idle_timeout})
        try:
            run(receiver.port, receiver.process.pid, args)
        finally:
            receiver.stop()


def run(port: int, pid: int, args: argparse.Namespace) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(associate_rq())
    sock.recv(65536)  # the A-ASSOCIATE-AC
    command = encode_request(CommandField.C_ECHO_RQ, 1, affected_sop_class_uid=VERIFICATION)
    echo = pdata(1, True, True, command)
    batch = echo * (64 * 1024 // len(echo))
    sent = 0
    ended = ""

    def send() -> None:
        nonlocal sent, ended
        try:
            while sent < args.mib * MIB:
                sock.sendall(batch)
                sent += len(batch)
            ended = "sent everything"
        except OSError as error:
            ended = f"cut off: {error!r}"

    print(f"receiver RSS at start: {rss_kib(pid) / 1024:.1f} MiB")
    thread = threading.Thread(target=send, daemon=True)
    started = time.monotonic()
    thread.start()
    next_step = args.step * MIB
    last_sent, last_change = 0, started
    while thread.is_alive() and time.monotonic() - started < args.seconds:
        time.sleep(0.2)
        now = time.monotonic()
        if sent != last_sent:
            last_sent, last_change = sent, now
        if sent >= next_step:
            rss = rss_kib(pid) / 1024
            print(f"{sent / MIB:6.0f} MiB sent after {now - started:5.1f} s: RSS {rss:.1f} MiB")
            next_step += args.step * MIB
    now = time.monotonic()
    print(
        f"end after {now - started:.1f} s: {sent / MIB:.1f} MiB sent"
        f" (last progress {now - last_change:.1f} s ago),"
        f" receiver RSS {rss_kib(pid) / 1024:.1f} MiB, peak {hwm_kib(pid) / 1024:.1f} MiB;"
        f" sender: {ended or 'blocked in sendall'}"
    )
    sock.close()
    thread.join(5)


if __name__ == "__main__":
    main()
