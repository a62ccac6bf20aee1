"""One worker's part of the receiver's limits, when several processes serve one port. Pure.

With ``OXIDICOM_WORKERS`` above 1 each worker process holds its own slots and pending
connections. The operator's numbers are for the whole receiver, so each worker enforces
its part of them: the workers together never allow more than one process would,
whichever worker each of a peer's connections reaches. The supervisor
(``oxidicom/app/dispatch.py``) hands each new connection to a worker with room, so a
worker is full only when the others are nearly so. Two rules are not divided: the
supervisor counts each address's request rate for the whole receiver, and tells each
worker the slots each address holds in the others, for the host-share rule.
"""

from __future__ import annotations

import msgspec


class WorkerShare(msgspec.Struct, frozen=True):
    """Worker ``index`` of ``count`` (``0 <= index < count``)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"worker {self.index} of {self.count} does not exist")

    def part(self, total: int) -> int:
        """This worker's whole part of ``total``; the parts add up to ``total``.

        The remainder goes to the first workers, one each. A part may be 0 when
        ``total`` is below ``count`` (never slots: see :func:`workers_for`).
        """
        return total // self.count + (1 if self.index < total % self.count else 0)

    def __str__(self) -> str:
        return f"worker {self.index + 1} of {self.count}"


#: The one share of a receiver running in a single process.
WHOLE = WorkerShare(0, 1)


#: Association slots each worker holds at least. The rate rule preempts the slowest
#: association of the worker a newcomer reaches, and a worker costs about 50 MiB: a
#: worker for every slot or two would spend memory on processes that rarely have a
#: slow association of their own to give up.
MIN_SLOTS_PER_WORKER = 4


def workers_for(wanted: int, max_associations: int) -> int:
    """How many workers to run: ``wanted``, but at most one per
    :data:`MIN_SLOTS_PER_WORKER` association slots (and always one)."""
    return max(1, min(wanted, max_associations // MIN_SLOTS_PER_WORKER))
