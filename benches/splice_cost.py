"""What it would save to move a data set's bytes from the socket to the file without
crossing user space: ``recv_into`` + ``write`` (as the receiver does) against ``splice``.

Today a data set's bytes are copied twice by the kernel: from the socket into a slab of
ours (``recv_into``), then from the slab into the page cache (``writev``). ``splice`` from
the socket into a pipe only hands the socket buffer's pages over, and from the pipe into
the file makes the one copy a file needs. This bench measures both on loopback, with no
DICOM: a forked sender writes 8 KiB at a time (as dcmtk's ``storescu`` does with
TCP_NODELAY) and the receiver stores every 512 KiB (a ct instance) as one file, by turns,
each way ``--repeats`` times::

    python benches/splice_cost.py                  # files on /dev/shm
    python benches/splice_cost.py --dir /var/tmp   # on a disk's page cache

It prints the wall time and both sides' CPU per file, median of the repeats. Using it in
the receiver would mean reading the PDU and PDV headers apart from their payload, with a
pipe per association (two more descriptors) and a reader of our own beside the
transport's: see benches/results/i21-speed.md.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import resource
import socket
import statistics
import tempfile
import time
from pathlib import Path

FILE_BYTES = 512 * 1024
SEND_BYTES = 8 * 1024
REGION = 256 * 1024  # what the receive buffer lends a read (MIN_LENT to SLAB_SIZE)
PIPE_BYTES = 1024 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def _sender(port: int, total: int) -> None:
    """In the forked child: ``total`` bytes in writes of SEND_BYTES, then wait for the end."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chunk = bytes(range(256)) * (SEND_BYTES // 256)
        for _ in range(total // SEND_BYTES):
            sock.sendall(chunk)
        sock.recv(1)


def _copy(sock: socket.socket, fd: int, size: int, region: memoryview) -> None:
    while size:
        got = sock.recv_into(region[: min(size, len(region))])
        if not got:
            raise SystemExit("the sender stopped early")
        os.write(fd, region[:got])
        size -= got


def _splice(sock: socket.socket, fd: int, size: int, pipe: tuple[int, int]) -> None:
    readable, writable = pipe
    while size:
        got = os.splice(sock.fileno(), writable, min(size, PIPE_BYTES))
        if not got:
            raise SystemExit("the sender stopped early")
        left = got
        while left:
            left -= os.splice(readable, fd, left)
        size -= got


def measure(way: str, files: int, folder: Path) -> tuple[float, float, float]:
    """Wall, receiver CPU and sender CPU per file (µs) of one run of ``files`` files."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        child = os.fork()
        if child == 0:
            try:
                _sender(port, files * FILE_BYTES)
            finally:
                os._exit(0)
        sock, _ = listener.accept()
    region = memoryview(bytearray(REGION))
    pipe = os.pipe()
    fcntl.fcntl(pipe[1], F_SETPIPE_SZ, PIPE_BYTES)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with sock:
        for n in range(files):
            fd = os.open(folder / f"{n % 64}.dcm", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            try:
                if way == "copy":
                    _copy(sock, fd, FILE_BYTES, region)
                else:
                    _splice(sock, fd, FILE_BYTES, pipe)
            finally:
                os.close(fd)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        sock.send(b"x")
    for end in pipe:
        os.close(end)
    _, _, sender = os.wait4(child, 0)
    own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    per = 1e6 / files
    return wall * per, own * per, (sender.ru_utime + sender.ru_stime) * per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="files of 512 KiB per run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default="/dev/shm", help="where the files go (a fresh folder)")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float, float]]] = {"copy": [], "splice": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for _ in range(args.repeats):
            for way, runs in results.items():
                runs.append(measure(way, args.files, Path(folder)))
    print(f"per file of {FILE_BYTES // 1024} KiB, median of {args.repeats} (µs):")
    for way, runs in results.items():
        wall, own, sender = (statistics.median(column) for column in zip(*runs, strict=True))
        print(f"  {way:6s} wall {wall:6.1f}  receiver CPU {own:6.1f}  sender CPU {sender:6.1f}")


if __name__ == "__main__":
    main()
