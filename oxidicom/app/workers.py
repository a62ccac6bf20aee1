"""Several receiver processes on one port: a supervisor that accepts, and its workers.

With ``OXIDICOM_WORKERS`` above 1 the process started by the operator binds the
listening socket, starts that many ordinary receivers
(``python -m oxidicom --worker ...``), each with its own event loop, storage work
folder, outbox publisher and NATS connection -- the same arrangement as several
replicas sharing storage and brokers -- and is the only one to accept: each connection
goes to the worker with the fewest connections for its part of the slots
(:mod:`oxidicom.app.dispatch`). Each worker enforces its part of every limit
(:mod:`oxidicom.scp.shares`), so the workers together allow no more than one process
would, and the first worker alone runs the DICOMweb listener. One socket bound once
(rather than ``SO_REUSEPORT``) means a second oxidicom started by mistake on the same
port fails to bind instead of silently sharing it. There is at most one worker per
:data:`~oxidicom.scp.shares.MIN_SLOTS_PER_WORKER` association slots.

The supervisor forwards SIGINT and SIGTERM and waits for every worker's graceful
stop. A worker that dies is started again (after a pause that grows while it keeps
dying at once); a worker that exits 1 or 2 could not start (bad storage, bad TLS
files), which a restart will not mend: the supervisor then stops everything and
exits with that status. A worker whose supervisor is gone (killed) stops as on
SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Mapping

import msgspec

from oxidicom.app.dispatch import Dispatcher
from oxidicom.app.settings import Settings
from oxidicom.scp.shares import WorkerShare

log = logging.getLogger("oxidicom.workers")

#: Connections the kernel queues before the supervisor of several workers accepts them (a
#: single process sets its own, fitted to its descriptor limit: settings.listen_backlog).
LISTEN_BACKLOG = 512


class Handoff(msgspec.Struct, frozen=True):
    """How a worker of several is started by its supervisor (its ``--worker`` argument)."""

    #: Its end of the channel the supervisor passes accepted connections over.
    channel_fd: int
    #: Which worker it is: its part of the limits, and worker 0 serves DICOMweb.
    share: WorkerShare
    #: The port the supervisor accepts on (for the start line).
    port: int
    #: Shared by the workers of one supervisor: their journal folders are named with it
    #: first, so that they do not take each other for other receivers.
    family: str = ""


#: Exit statuses of a receiver that could not start (bad settings, storage, port).
_START_FAILURES = (1, 2)
_FIRST_BACKOFF = 1.0
_MAX_BACKOFF = 30.0
#: A worker that lived this long before dying is restarted without delay.
_HEALTHY_UPTIME = 60.0


class ListenError(Exception):
    """The listening socket cannot be bound: one line for the user."""


def bind_listener(settings: Settings) -> socket.socket:
    """The listening socket every worker accepts on."""
    address = settings.listener_address
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            address or None,
            settings.listener_port,
            type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(where)
            sock.listen(LISTEN_BACKLOG)
        except BaseException:
            sock.close()
            raise
    except OSError as error:
        raise ListenError(
            f"cannot listen on {address}:{settings.listener_port}: {error.strerror or error}"
        ) from error
    return sock


def worker_argument(channel_fd: int, share: WorkerShare, port: int, family: str = "") -> str:
    """The hidden ``--worker`` argument of a worker's command line."""
    return f"{channel_fd}:{share.index}:{share.count}:{port}:{family}"


def parse_worker_argument(text: str) -> Handoff:
    """What :func:`worker_argument` wrote."""
    channel_fd, index, count, port, family = text.split(":")
    return Handoff(int(channel_fd), WorkerShare(int(index), int(count)), int(port), family)


def supervise(settings: Settings, count: int, environ: Mapping[str, str] | None = None) -> int:
    """Run ``count`` receivers on one socket until SIGINT/SIGTERM; exit status.

    ``environ``: the workers' environment (the command line's settings included); by
    default this process's own.
    """
    try:
        sock = bind_listener(settings)
    except ListenError as error:
        print(f"oxidicom: {error}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_Supervisor(settings, count, sock, environ).run())
    finally:
        sock.close()


class _Supervisor:
    def __init__(
        self,
        settings: Settings,
        count: int,
        sock: socket.socket,
        environ: Mapping[str, str] | None,
    ) -> None:
        self.settings = settings
        self.environ = dict(os.environ if environ is None else environ)
        self.sock = sock
        self.stopping = False
        self.status = 0
        self.workers: dict[int, asyncio.subprocess.Process] = {}
        self.count = count
        #: Names its workers' journal folders first (see Handoff.family).
        self.family = f"{secrets.token_hex(4)}."
        self.port = int(sock.getsockname()[1])
        self.dispatcher: Dispatcher | None = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        self.dispatcher = Dispatcher(self.sock, self.count, self.settings.max_association_rate)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop, stop, signum)
        host = self.sock.getsockname()[0]
        log.info("oxidicom supervisor: %d workers sharing %s:%d", self.count, host, self.port)
        keepers = [asyncio.create_task(self._keep(index, stop)) for index in range(self.count)]
        try:
            await asyncio.gather(*keepers)
        finally:
            self.dispatcher.close()
        # Each worker said "stopped" for itself; this line is the receiver's.
        log.info("oxidicom supervisor: stopped, every worker has finished")
        return self.status

    def _stop(self, stop: asyncio.Event, signum: int) -> None:
        if not self.stopping:
            log.info("stopping %d workers", len(self.workers))
        self.stopping = True
        stop.set()
        if self.dispatcher is not None:
            self.dispatcher.stop_accepting()  # the workers finish what they have
        # As one process closes its listener: a new connection is refused at once (a
        # peer or a load balancer then tries another replica), not left in the backlog.
        self.sock.close()
        for process in self.workers.values():
            _signal(process, signum)

    async def _keep(self, index: int, stop: asyncio.Event) -> None:
        """Run worker ``index``; start it again whenever it dies, until we stop."""
        assert self.dispatcher is not None
        share = WorkerShare(index, self.count)
        slots = share.part(self.settings.max_associations)
        backoff = _FIRST_BACKOFF
        while not self.stopping:
            started = time.monotonic()
            channel = self.dispatcher.attach(index, slots)
            try:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "oxidicom",
                    "--worker",
                    worker_argument(channel.fileno(), share, self.port, self.family),
                    pass_fds=(channel.fileno(),),
                    env=self.environ,
                )
            finally:
                channel.close()  # the worker has its own copy
            self.workers[index] = process
            if self.stopping:  # the signal came while this worker was being started
                _signal(process, signal.SIGTERM)
            status = await process.wait()
            self.dispatcher.detach(index)
            if self.stopping:
                # Killed by the signal itself: it was still starting, nothing to finish.
                if status not in (0, -signal.SIGTERM, -signal.SIGINT):
                    self.status = self.status or 1
                return
            if status in _START_FAILURES:
                log.error("worker %d could not start (exit status %d): stopping", index + 1, status)
                self.status = status
                self._stop(stop, signal.SIGTERM)
                return
            lived = time.monotonic() - started
            if lived >= _HEALTHY_UPTIME:
                backoff = _FIRST_BACKOFF
            log.error(
                "worker %d (pid %d) ended with status %d after %.1f s: starting it again in %.0f s",
                index + 1,
                process.pid,
                status,
                lived,
                backoff,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)


def _signal(process: asyncio.subprocess.Process, signum: int) -> None:
    """Signal a worker that has not been reaped.

    Not ``Process.send_signal``: it polls the child first (``waitpid``), and when that
    reaps a worker that just died, the loop's child watcher finds nothing left to reap
    and reports status 255 (CPython issue 87744).
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)
