"""What the machine allows at best: loopback TCP, disk writes, creating a file."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

MIB = 1024 * 1024


def loopback_mib_per_s(total_bytes: int, chunk: int = MIB) -> float:
    """One TCP connection on 127.0.0.1, ``sendall`` of ``chunk`` at a time, MiB/s."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received = 0

    def receive() -> None:
        nonlocal received
        conn, _ = listener.accept()
        buf = bytearray(chunk)
        view = memoryview(buf)
        with conn:
            while n := conn.recv_into(view):
                received += n

    thread = threading.Thread(target=receive)
    thread.start()
    payload = b"\x5a" * chunk
    start = time.perf_counter()
    with socket.create_connection(listener.getsockname()) as sender:
        sender.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(total_bytes // chunk):
            sender.sendall(payload)
    thread.join()
    elapsed = time.perf_counter() - start
    listener.close()
    return received / MIB / elapsed


def disk_write_mib_per_s(folder: Path, total_bytes: int, chunk: int = MIB) -> float:
    """Write ``total_bytes`` to one new file in ``folder``, then fsync it; MiB/s."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ceiling-write.bin"
    payload = os.urandom(chunk)
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(total_bytes // chunk):
            os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - start
    path.unlink()
    return total_bytes / MIB / elapsed


def file_create_us(folder: Path, count: int, size: int = 4096, fsync: bool = False) -> float:
    """Microseconds per file: create a temporary file, write ``size`` bytes, close, rename."""
    work = folder / "ceiling-files"
    shutil.rmtree(work, ignore_errors=True)
    tmp, final = work / "tmp", work / "final"
    tmp.mkdir(parents=True)
    final.mkdir()
    payload = b"\0" * size
    start = time.perf_counter()
    for n in range(count):
        name = f"{n:06d}.dcm"
        fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, payload)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp / name, final / name)
    elapsed = time.perf_counter() - start
    shutil.rmtree(work, ignore_errors=True)
    return elapsed / count * 1e6


def measure_ceilings(folder: Path, quick: bool) -> dict[str, float]:
    """Every ceiling, smaller amounts with ``quick``."""
    gib = 1024 * MIB
    return {
        "loopback_mib_per_s": loopback_mib_per_s(256 * MIB if quick else 2 * gib),
        "disk_write_mib_per_s": disk_write_mib_per_s(folder, 128 * MIB if quick else gib),
        "file_create_us": file_create_us(folder, 2000),
        "file_create_fsync_us": file_create_us(folder, 100 if quick else 500, fsync=True),
    }
