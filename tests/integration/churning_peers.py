"""Peers that never let an association grow old: open, send nothing, release, reopen.

The attack of issue 24: every association is released before the grace period of the
rate rule (``transfer_rate.GRACE``) is over and reopened at once, so that every slot is
always held by an association too young to be judged by its rate. Used by
tests/integration/test_fairness.py and ``benches/slow_peers.py --mode churn``.
"""

from __future__ import annotations

import contextlib
import threading

from oxidicom.ul import pdu as ul
from tests.integration.raw_peer import RawPeer, associate_rq

#: After an A-ASSOCIATE-RJ, the wait before the next request (an attacker retrying in a
#: tight loop only costs this machine's CPU, which the tests share with the receiver).
RETRY_AFTER_REJECT = 0.05


class ChurningPeers:
    """``count`` threads, each holding one association from ``source`` for ``hold``
    seconds at a time, sending nothing; a rejected or preempted one asks again."""

    def __init__(
        self, port: int, count: int, source: str, hold: float, calling: str = "CHURNER"
    ) -> None:
        self.port = port
        self.source = source
        self.hold = hold
        self.calling = calling
        self.accepted = 0
        self.rejected = 0
        self.preempted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        #: Set once every thread holds an association at the same time (or tried to).
        self._holding = threading.Barrier(count + 1)
        self._threads = [
            threading.Thread(target=self._churn, daemon=True, name=f"churn-{i}")
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def wait_until_all_hold(self, timeout: float = 30.0) -> None:
        """Return once every thread has held its first association (the slots are full)."""
        self._holding.wait(timeout)

    def _churn(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                peer = RawPeer.connect(self.port, self.source)
            except OSError:
                self._stop.wait(RETRY_AFTER_REJECT)
                continue
            with peer:
                try:
                    peer.send(associate_rq(calling=self.calling))
                    answer = peer.read_pdu()
                except OSError:
                    answer = None
                if not isinstance(answer, ul.AssociateAC):
                    self._count("rejected")
                    self._stop.wait(RETRY_AFTER_REJECT)
                    continue
                self._count("accepted")
                if first:
                    first = False
                    with contextlib.suppress(threading.BrokenBarrierError):
                        self._holding.wait()
                self._stop.wait(self.hold)
                self._release(peer)

    def _release(self, peer: RawPeer) -> None:
        try:
            peer.send(ul.encode(ul.ReleaseRQ()))
            answers = peer.read_until_closed()
        except (OSError, AssertionError):
            answers = [ul.Abort(0, 0)]
        if any(isinstance(answer, ul.Abort) for answer in answers):
            self._count("preempted")

    def _count(self, outcome: str) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)

    def close(self) -> None:
        """Stop churning: every thread releases what it holds and ends."""
        self._stop.set()
        self._holding.abort()
        for thread in self._threads:
            thread.join(30)

    def __enter__(self) -> ChurningPeers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
