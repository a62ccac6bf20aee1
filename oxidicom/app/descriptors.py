"""File descriptors: raise the soft limit at start, and fit the connection caps under it.

Every connection costs a descriptor, and so does every file being written. A peer that
opens connections and sends nothing must not take the descriptors that a C-STORE's
file, the outbox or a real peer's connection need: at the limit (``EMFILE``) the kernel
refuses every accept, on both listeners, and every open.

So at start the soft ``RLIMIT_NOFILE`` is raised to the hard one (the common soft limit
of 1024 is a default for interactive shells, not a choice), and the caps on connections
that hold no slot (``OXIDICOM_MAX_PENDING_CONNECTIONS``, per listener) are lowered, if
need be, so that all connections the receiver keeps open at once fit under the limit
with :data:`RESERVE` descriptors to spare:

    RESERVE + PER_SLOT x slots (DIMSE and HTTP) + AUTH_WAITING
        + (pending cap + listen backlog) x listeners

The backlog counts because an event loop accepts every queued connection in one go
(libuv does), before a connection closed for the cap gives its descriptor back: a
burst costs up to the backlog on top of the cap. The backlog is lowered with the cap
(it costs no descriptor while queued; a smaller one only makes the kernel drop
SYNs sooner during a flood, which a real peer retries). Beyond the caps the oldest
idle connection is closed, so the total never grows.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

import msgspec

from oxidicom.app.settings import Settings
from oxidicom.dicomweb.auth import MAX_PENDING

log = logging.getLogger("oxidicom.descriptors")

#: Descriptors never given to connections: standard streams, the listening sockets, the
#: broker and NATS connections, the outbox and journal, the executor's file writes,
#: the event loop's own (epoll, signal pipe), imported libraries.
RESERVE = 64
#: Per slot (a running association or STOW-RS request): its socket, the file being
#: written, and one for its series folder or a journal entry.
PER_SLOT = 3
#: HTTP connections whose request waits for a password check (not pending, no slot):
#: bounded by the hash queue.
AUTH_WAITING = MAX_PENDING
#: No listener is given fewer pending connections (nor a shorter backlog) than this.
MIN_PENDING = 4
#: The listen backlog when descriptors are plenty (the DIMSE listener's; HTTP's is
#: at most 128, see oxidicom.dicomweb.server).
DEFAULT_BACKLOG = 512


@dataclass(frozen=True)
class DescriptorBudget:
    """The limit found (after raising it) and the cap of pending connections per listener."""

    soft: int
    hard: int
    max_pending: int
    #: The listen backlog of each listener.
    backlog: int
    #: A line for the operator when the configured cap was lowered or the limit is tight.
    warning: str | None


def raise_soft_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one (as far as allowed); (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = _nr_open()
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as error:
            log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, hard, error)
    return soft, hard


def _nr_open() -> int:
    """The kernel's ceiling for one process (an unlimited hard limit cannot be set)."""
    try:
        with open("/proc/sys/fs/nr_open", encoding="ascii") as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return 1024 * 1024


def budget(settings: Settings, soft: int, hard: int) -> DescriptorBudget:
    """The cap of pending connections per listener that fits under ``soft``."""
    http = settings.dicomweb_port is not None
    listeners = 2 if http else 1
    slots = settings.max_associations * listeners
    fixed = RESERVE + PER_SLOT * slots + (AUTH_WAITING if http else 0)
    share = (soft - fixed) // listeners  # per listener: pending cap and backlog
    wanted = settings.max_pending_connections
    cap = max(MIN_PENDING, min(wanted, share // 2))
    backlog = max(MIN_PENDING, min(DEFAULT_BACKLOG, share - cap))
    warning = None
    if share < 2 * MIN_PENDING:
        warning = (
            f"the descriptor limit ({soft}) is too low for {slots} slot(s)"
            f" (OXIDICOM_LISTENER_THREADS={settings.max_associations} per listener): peers"
            f" may be refused while files are written; raise it (ulimit -n, LimitNOFILE=)"
            f" to at least {fixed + 2 * MIN_PENDING * listeners}"
        )
    elif cap < wanted:
        warning = (
            f"OXIDICOM_MAX_PENDING_CONNECTIONS={wanted} lowered to {cap} per listener: the"
            f" descriptor limit is {soft} (hard {hard}); raise it to keep {wanted}"
        )
    return DescriptorBudget(soft, hard, cap, backlog, warning)


def fit_settings(settings: Settings) -> tuple[Settings, DescriptorBudget]:
    """Raise the limit, and the settings with the pending cap that fits under it."""
    soft, hard = raise_soft_limit()
    found = budget(settings, soft, hard)
    settings = msgspec.structs.replace(
        settings, max_pending_connections=found.max_pending, listen_backlog=found.backlog
    )
    return settings, found
