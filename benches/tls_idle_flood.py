"""Idle connections against a DICOM TLS listener: how many descriptors do they hold?

``--connections`` TCP connections that never send a ClientHello, with
``OXIDICOM_MAX_PENDING_CONNECTIONS=--pending``; then dcmtk's echoscu over TLS (mutual).
Prints the receiver's open descriptors (/proc/PID/fd) before, once echoscu is through
(the receiver accepts in order, so every idle connection was accepted by then), and
``--hold`` seconds later, with how echoscu fared.

    .venv/bin/python -m benches.tls_idle_flood --connections 300 --pending 10
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from benches._receiver import start_receiver
from tests.integration.tls_certs import make_ca, make_leaf

ECHOSCU = "/usr/bin/echoscu"


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--pending", type=int, default=10)
    parser.add_argument("--hold", type=float, default=5.0, help="seconds to look again after")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = Path(tmp) / "pki"
        ca = make_ca(pki, "ca")
        server = make_leaf(ca, pki, "server", server=True)
        client = make_leaf(ca, pki, "client", server=False)
        receiver = start_receiver(
            Path(tmp) / "receiver",
            {
                "OXIDICOM_TLS_CERTIFICATE": str(server.cert),
                "OXIDICOM_TLS_KEY": str(server.key),
                "OXIDICOM_TLS_CLIENT_CA": str(ca.cert),
                "OXIDICOM_MAX_PENDING_CONNECTIONS": str(args.pending),
                "OXIDICOM_LOG_LEVEL": "INFO",
            },
        )
        echo = [
            ECHOSCU, "-aec", "ChRIS", "+tls", str(client.key), str(client.cert),
            "+cf", str(ca.cert), "127.0.0.1", str(receiver.port),
        ]  # fmt: skip
        pid = receiver.process.pid
        try:
            subprocess.run(echo, check=True, capture_output=True, timeout=60)
            before = _fds(pid)
            flood = [
                socket.create_connection(("127.0.0.1", receiver.port))
                for _ in range(args.connections)
            ]
            started = time.monotonic()
            result = subprocess.run(echo, capture_output=True, text=True, timeout=120)
            took = time.monotonic() - started
            during = _fds(pid)
            time.sleep(args.hold)  # what a flood holds over time: the measure itself
            later = _fds(pid)
            outcome = "success" if result.returncode == 0 else "failed"
            print(
                f"{args.connections} idle connections, pending cap {args.pending}: receiver fds"
                f" {before} before, {during} once echoscu +tls was through ({outcome} in"
                f" {took:.2f} s), {later} {args.hold:g} s later"
            )
            for sock in flood:
                sock.close()
        finally:
            receiver.stop()


if __name__ == "__main__":
    main()
