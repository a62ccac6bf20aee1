"""Series held by replicas on several hosts, through a Redis-protocol server.

Each receiver process is a *replica* with a random id. What it does with the store
(keys and scripts: :mod:`oxidicom.notify.series_scripts`):

- **Holds, counts, releases** go in batches: what the hot path noted (a new hold, files
  stored, a release) is sent at most every :data:`SYNC_PERIOD`, one pipelined round trip
  for every series touched meanwhile, never per file. The store's count of the series
  (every replica's files) comes back, and LONK progress is published from it when it is
  the highest count handed out so far (so that it never goes backwards on a subject).
- **Heartbeats**: each batch ends with this replica's heartbeat (sent alone every
  :data:`BEAT_PERIOD` when there is nothing else): a series is decided only once every
  live replica reported after it became quiet, so a hold sent late is never missed.
- **Leases**: a hold lasts ``OXIDICOM_SERIES_LEASE`` past its last renewal; every third
  of it, one round trip renews all of this replica's holds, and sweeps the series due.
- **Who registers**: when a series released here is due (quiet for the settle interval),
  the ``DECIDE`` script answers *mine* (no live holder, quiet long enough: this replica
  claims it, registers it with the files in its folder, then marks it done), *gone*
  (registered already: the journal entry is withdrawn) or *wait until* (another replica
  holds it, or registers it: asked again then). A series whose every holder died is found
  by the sweep, and registered from the entry the store keeps.

The hot path never waits for the store. While it cannot be reached, reception goes on,
holds stay in the journal, and the calls are retried (backoff 0.5 s to 5 s):
registrations wait for the store; none is sent on a guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from oxidicom.notify import series_scripts as scripts
from oxidicom.notify.broker_url import redis_client
from oxidicom.notify.journal import (
    JournalEntry,
    decode_entry,
    digest_of_key,
    encode_entry,
    series_entry_name,
)
from oxidicom.notify.registrations import HANDED_OVER
from oxidicom.notify.series_store import WATCHED, Later
from oxidicom.notify.settle import PendingSeries
from oxidicom.notify.waiting import cancel_and_wait, wait_event

if TYPE_CHECKING:
    from oxidicom.notify.progress import ProgressPolicy
    from oxidicom.notify.registrations import Registrations

log = logging.getLogger("oxidicom.series")

#: Holds, counts and releases noted in the hot path are sent at most this often (s).
SYNC_PERIOD: Final = 0.1
#: A replica with nothing to send reports this often (its heartbeat): a decision waits
#: for every live replica to have reported since the series became quiet.
BEAT_PERIOD: Final = 0.25
#: Backoff of calls that failed: first retry, longest wait (s).
RETRY_FIRST: Final = 0.5
RETRY_MAX: Final = 5.0
#: Series per renewal script, and per sweep.
RENEW_CHUNK: Final = 512
SWEEP_CHUNK: Final = 64
#: How long the mark of a registered series stays in the store: a replica coming back
#: with a hold on it within this time withdraws its hold instead of registering (ms).
DONE_MARK_MS: Final = 24 * 3600 * 1000
#: The series registered here in the last REMARK_LEASES leases (at least REMARK_MIN s, at
#: most REMARK_MAX of them) are marked again when the store had a silence: a store that
#: restarted empty would otherwise take them for unknown, and a replica still watching one
#: would register it again.
REMARK_LEASES: Final = 10
REMARK_MIN: Final = 300.0
REMARK_MAX: Final = 100_000


#: Bound of one call to the store: well within a renewal period (a third of a lease), so
#: that a call that hangs (a link down, packets dropped) fails and is retried in time.
CALL_TIMEOUT: Final = 5.0


def store_client(url: str) -> aioredis.Redis:
    """The broker module's client (no retries inside, RESP2), with calls bounded by
    :data:`CALL_TIMEOUT` instead of the broker's 30 s."""
    client = redis_client(url)
    client.connection_pool.connection_kwargs.update(
        socket_timeout=CALL_TIMEOUT, socket_connect_timeout=CALL_TIMEOUT
    )
    return client


@dataclass(slots=True)
class _Tally:
    """The series' count across replicas, and what this replica published of it."""

    pacs_name: str
    series_instance_uid: str
    count: int = 0
    progress_sent: int = 0
    progress_at: float = 0.0


@dataclass(slots=True, eq=False)
class _Held:
    """This replica's hold on a series in the store."""

    digest: str
    entry: bytes
    tally: _Tally
    #: The store has our hold.
    in_store: bool = False
    #: Which of this replica's holds on the series (the store counts each hold's files).
    number: int = 0
    #: Files stored here under this hold: sent whole each time, so that a call sent twice
    #: (a reply lost with the connection) is counted once.
    stored: int = 0
    #: No association of ours stores into it: to be released in the store.
    releasing: bool = False
    #: The store counted its first file: the first call counts one file only, so that
    #: the replica that starts a series publishes progress 1 first (CONTRACT: LONK).
    announced: bool = False
    #: Server time (ms) at which the store last extended this hold's lease (a hold, a
    #: renewal): a hold unconfirmed for a lease may have lapsed.
    confirmed: int = 0


@dataclass(order=True, slots=True)
class _Watch:
    """A series released here (or found by the sweep) that the store has not decided yet."""

    at: float
    serial: int
    series: PendingSeries = field(compare=False)
    #: Found by the sweep: we hold no journal entry of it.
    orphan: bool = field(compare=False, default=False)


class RedisSeriesStore:
    """:class:`~oxidicom.notify.series_store.SeriesStore` on Redis or DragonflyDB."""

    counts_series = True

    def __init__(
        self,
        url: str,
        registrations: Registrations,
        *,
        settle: float,
        lease: float,
        client: Callable[[str], aioredis.Redis] = store_client,
    ) -> None:
        self.url = url
        self.replica = uuid.uuid4().hex[:16]
        self._registrations = registrations
        self._settle_ms = round(settle * 1000)
        self._lease_ms = round(lease * 1000)
        self.lease = lease
        self._client = client(url)
        self._scripts: dict[str, Any] = {
            name: self._client.register_script(getattr(scripts, name))
            for name in ("TOUCH", "BEAT", "RENEW", "DECIDE", "DONE", "SWEEP")
        }
        self._held: dict[str, _Held] = {}
        self._dirty: dict[str, _Held] = {}
        self._watches: list[_Watch] = []
        self._watched: set[str] = set()
        self._serial = itertools.count()
        self._wake_sync = asyncio.Event()
        self._wake_watch = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._later: Later | None = None
        self._progress: ProgressPolicy | None = None
        self._loop = asyncio.get_running_loop()
        self._unreachable = False
        self._orphans = itertools.count(1)
        self._hold_numbers = itertools.count(1)
        self._hold_again = False
        #: Series registered here whose mark in the store is not written yet (the store
        #: failed): retried, or the claim would lapse and another replica register again.
        self._undone: dict[str, tuple[str, int]] = {}
        #: Series this replica was told are its to register, until they are (or not):
        #: another hold of ours on one of them is told 'gone', whatever a call says.
        self._claiming: set[str] = set()
        #: Series registered and marked here lately: digest -> (ndicom, when).
        self._recent: dict[str, tuple[int, float]] = {}
        #: The store's ``since`` (when calls resumed after its last silence), as last seen.
        self._since: int | None = None

    # -- the hot path: noted, sent by the sync task ------------------------------------

    def hold(self, series: PendingSeries, entry: JournalEntry) -> None:
        held = self._held.get(series.digest)
        if held is None:
            tally = _Tally(series.pacs_name, series.series_instance_uid)
            held = self._held[series.digest] = _Held(
                series.digest, encode_entry(entry), tally, number=next(self._hold_numbers)
            )
        held.releasing = False
        self._note(held)

    def stored(self, series: PendingSeries) -> None:
        held = self._held.get(series.digest)
        if held is not None:
            held.stored += 1
            self._note(held)

    def release(self, series: PendingSeries) -> None:
        held = self._held.get(series.digest)
        if held is not None:
            held.releasing = True
            self._note(held)

    def _note(self, held: _Held) -> None:
        current = self._held.get(held.digest)
        if current is not None and current is not held:
            # A newer hold of ours on the series: its calls carry the series' state.
            held = current
        if not self._dirty:
            self._wake_sync.set()
        self._dirty[held.digest] = held

    # -- life cycle ----------------------------------------------------------------------

    async def start(self, later: Later, progress: ProgressPolicy | None) -> None:
        self._later = later
        self._progress = progress
        try:
            await self._client.ping()
            log.info(
                "series store %s reached: replica %s, lease %g s",
                _redact(self.url),
                self.replica,
                self.lease,
            )
        except (RedisError, OSError) as error:
            self._unreachable_now(error)
        loop = self._loop
        self._tasks = [
            loop.create_task(self._sync_loop(), name="series-store-sync"),
            loop.create_task(self._renew_loop(), name="series-store-renew"),
            loop.create_task(self._watch_loop(), name="series-store-watch"),
        ]
        journal = self._registrations.journal
        for key in journal.adopted:
            try:
                entry = await self._loop.run_in_executor(None, journal.read, key)
            except (OSError, ValueError) as error:
                log.error("journal entry %s is unreadable (%s): left alone", key, error)
                continue
            series = PendingSeries(
                digest_of_key(key) or "",
                key,
                entry.kwargs.get("pacs_name", ""),
                entry.kwargs.get("SeriesInstanceUID", ""),
                entry.association_id or "",
            )
            self._watch(series, self._loop.time())
        adopted = journal.adopted
        if adopted:
            log.warning(
                "%d hold(s) on series left by earlier runs: the series store decides"
                " whether they are registered already",
                len(adopted),
            )

    async def stop(self) -> None:
        """Send what is noted, decide every watched series once, and close."""
        await cancel_and_wait(self._tasks)
        with contextlib.suppress(RedisError, OSError):
            for _ in range(3):  # a first file's tick leaves its count and release for one more
                await self._sync_once()
                if not self._dirty:
                    break
        await self._mark_done()
        if self._watches:
            watches, self._watches = self._watches, []
            self._watched.clear()
            with contextlib.suppress(RedisError, OSError):
                await self._decide_watched(watches, force=True)
            if self._watches:
                log.info(
                    "%d series still held by other replicas at the stop: they register them"
                    " (the holds stay in the journal, and the next start asks again)",
                    len(self._watches),
                )
        with contextlib.suppress(RedisError, OSError):
            # Gone: decisions need not wait for this replica's heartbeat any more.
            await self._client.hdel(scripts.META_KEY, f"r:{self.replica}")
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    # -- settling ------------------------------------------------------------------------

    async def settle(
        self, chunk: list[PendingSeries], held_here: Callable[[str], bool]
    ) -> dict[str, int | str]:
        if not chunk:
            return {}
        await self._sync_soon()
        try:
            decided = await self._decide(chunk, force=False, orphans=set())
            return {series.key: outcome for series, outcome in decided}
        except (RedisError, OSError) as error:
            self._unreachable_now(error)
            log.info(
                "%d series due here wait for the series store (their holds stay in the journal)",
                len(chunk),
            )
            now = self._loop.time()
            for series in chunk:
                self._watch(series, now + RETRY_FIRST)
            return {series.key: WATCHED for series in chunk}

    async def _decide(
        self, chunk: list[PendingSeries], *, force: bool, orphans: set[str]
    ) -> list[tuple[PendingSeries, int | str]]:
        """One round trip of DECIDE, then the registrations claimed (one executor trip).

        Returns each series with its outcome (a series of the sweep that is registered
        here comes back as a new one, under its key in our journal)."""
        decide = self._scripts["DECIDE"]
        async with self._client.pipeline(transaction=False) as pipe:
            for series in chunk:
                await decide(
                    keys=self._keys(series.digest),
                    args=[
                        *self._args(),
                        series.digest,
                        "1" if series.key in orphans else "0",
                        "1" if force else "0",
                        round((RETRY_MAX + 1) * 1000),
                    ],
                    client=pipe,
                )
            answers = await pipe.execute()
        self._reachable()
        outcomes: list[tuple[PendingSeries, int | str]] = []
        mine: list[tuple[PendingSeries, int]] = []
        gone: list[PendingSeries] = []
        claimed = self._claiming
        for series, answer in zip(chunk, answers, strict=True):
            verdict = _text(answer[0])
            server_now = int(answer[1])
            if verdict == "mine" and (series.digest in claimed or series.digest in self._undone):
                # Being registered, or registered, here by another hold of ours (its mark
                # not in the store yet): the claim stays that one's; this hold hands over.
                verdict = "gone"
            if verdict == "mine":
                claimed.add(series.digest)
                entry, progress_sent = answer[2], int(answer[4])
                if series.key in orphans:
                    try:
                        series = await self._adopt(series, entry)
                    except (OSError, ValueError) as error:
                        log.error(
                            "series %s of the store cannot be registered here (%s): left to"
                            " its claim's lapse",
                            series.digest,
                            error,
                        )
                        claimed.discard(series.digest)
                        continue
                mine.append((series, progress_sent))
            elif verdict == "gone":
                gone.append(series)
                outcomes.append((series, HANDED_OVER))
            else:
                delay = max(0.0, (int(answer[2]) - server_now) / 1000)
                log.debug(
                    "series %s: decision waits %.1f s (held elsewhere, registered by"
                    " another replica, or the store's grace after a silence)",
                    series.series_instance_uid,
                    delay,
                )
                self._watch(series, self._loop.time() + delay, orphan=series.key in orphans)
                outcomes.append((series, WATCHED))
        await self._registrations.forget([s.key for s in gone if s.key not in orphans])
        if mine:
            try:
                registered = await self._registrations.register_claimed([s.key for s, _ in mine])
            finally:
                claimed.difference_update(s.digest for s, _ in mine)
            for series, progress_sent in mine:
                outcome = registered.get(series.key, HANDED_OVER)
                outcomes.append((series, outcome))
                series.progress_sent = max(series.progress_sent, progress_sent)
                if isinstance(outcome, int):
                    self._undone[series.digest] = (series.digest, outcome)
            await self._mark_done()
        return outcomes

    async def _mark_done(self) -> None:
        """Mark the series registered here as done in the store (one round trip).

        Not marked (the store failed): retried at each renewal, within the claim's lease
        (after a silence of the store no claim is taken over before that, see the grace).
        A claim that lapses all the same (this replica dies first) makes another replica
        register the series again, whole: CUBE refuses the second; never lost."""
        if not self._undone:
            return
        marks = list(self._undone.values())
        done = self._scripts["DONE"]
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for digest, ndicom in marks:
                    await done(
                        keys=self._keys(digest),
                        args=[*self._args(), digest, ndicom, DONE_MARK_MS],
                        client=pipe,
                    )
                answers = await pipe.execute()
        except (RedisError, OSError) as error:
            self._unreachable_now(error)
            return
        now = self._loop.time()
        recent = self._recent
        for (digest, ndicom), marked in zip(marks, answers, strict=True):
            self._undone.pop(digest, None)
            if int(marked) and digest not in recent:  # a mark sent again keeps its age
                recent[digest] = (ndicom, now)  # newest last
        window = max(REMARK_LEASES * self.lease, REMARK_MIN)
        while recent:
            oldest = next(iter(recent))
            if len(recent) <= REMARK_MAX and recent[oldest][1] >= now - window:
                break
            del recent[oldest]

    def _store_since(self, since: int) -> bool:
        """The store's ``since`` as its heartbeat answered; True if it changed: the store
        had a silence, and may have lost holds and marks (they are all sent again)."""
        seen, self._since = self._since, since
        if seen is None or seen == since:
            return False
        self._hold_again = True
        self._wake_sync.set()
        return True

    async def _mark_again(self) -> None:
        """Mark again the series registered here lately (after a failure or a silence of the
        store, which may have lost those marks: a restart, a failover to a replica that had
        not got them yet)."""
        for digest, (ndicom, _) in self._recent.items():
            self._undone.setdefault(digest, (digest, ndicom))
        await self._mark_done()

    async def _adopt(self, series: PendingSeries, entry: bytes) -> PendingSeries:
        """A dead replica's series claimed by the sweep: its entry into our journal."""
        key = series_entry_name(series.digest, 0) + f"o{next(self._orphans)}"
        journaled = decode_entry(entry)
        adopted = PendingSeries(
            series.digest,
            key,
            journaled.kwargs.get("pacs_name", ""),
            journaled.kwargs.get("SeriesInstanceUID", ""),
            journaled.association_id or "",
        )
        journal = self._registrations.journal
        await self._loop.run_in_executor(None, journal.record_raw, key, entry)
        log.warning(
            "series %s from %s was held by a replica that stopped renewing its hold:"
            " registered here",
            adopted.series_instance_uid,
            adopted.pacs_name,
        )
        return adopted

    def _watch(self, series: PendingSeries, at: float, *, orphan: bool = False) -> None:
        if series.key in self._watched:
            return
        self._watched.add(series.key)
        heapq.heappush(self._watches, _Watch(at, next(self._serial), series, orphan))
        self._wake_watch.set()

    async def _watch_loop(self) -> None:
        loop = self._loop
        while True:
            if not self._watches:
                self._wake_watch.clear()
                await self._wake_watch.wait()
                continue
            delay = self._watches[0].at - loop.time()
            if delay > 0:
                self._wake_watch.clear()
                await wait_event(self._wake_watch, delay)
                continue
            now = loop.time()
            taken: list[_Watch] = []
            while self._watches and self._watches[0].at <= now and len(taken) < SWEEP_CHUNK:
                watch = heapq.heappop(self._watches)
                self._watched.discard(watch.series.key)
                taken.append(watch)
            try:
                await self._decide_watched(taken, force=False)
            except (RedisError, OSError) as error:
                self._unreachable_now(error)
                await asyncio.sleep(RETRY_FIRST)
                for watch in taken:
                    self._watch(watch.series, loop.time(), orphan=watch.orphan)
            except Exception:  # a bug: the journal keeps the holds for the next start
                log.exception("cannot decide %d series", len(taken))

    async def _decide_watched(self, taken: list[_Watch], *, force: bool) -> None:
        orphans = {w.series.key for w in taken if w.orphan}
        decided = await self._decide([w.series for w in taken], force=force, orphans=orphans)
        later = self._later
        for series, outcome in decided:
            if outcome == WATCHED or later is None:
                continue
            if not isinstance(outcome, int) and series.key in orphans:
                continue  # registered already, by whoever: nothing was ours
            await later(series, outcome)

    # -- the sync task: holds, counts, releases ----------------------------------------

    async def _sync_soon(self) -> None:
        """Send what is noted now (a settle must not overtake our own release)."""
        if self._dirty:
            with contextlib.suppress(RedisError, OSError):
                await self._sync_once()

    async def _sync_loop(self) -> None:
        delay = RETRY_FIRST
        while True:
            await wait_event(self._wake_sync, BEAT_PERIOD)
            if self._wake_sync.is_set():
                await asyncio.sleep(SYNC_PERIOD)  # what the hot path notes meanwhile too
            self._wake_sync.clear()
            try:
                await self._sync_once()
                delay = RETRY_FIRST
            except (RedisError, OSError) as error:
                self._unreachable_now(error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                self._wake_sync.set()

    async def _sync_once(self) -> None:
        """Send what is noted, then the heartbeat, in one pipelined round trip."""
        again = self._hold_again
        if again:
            # After a failure, every hold is sent again before the next heartbeat: the
            # store may have lost some (a restart, a failover to a replica that had not
            # got them yet). Whole counts make it harmless when it had not.
            self._hold_again = False
            for held in self._held.values():
                if held.releasing:
                    continue  # released: its release is sent again if it was not applied
                held.in_store = False
                self._dirty[held.digest] = held
        batch = list(self._dirty.values())
        self._dirty.clear()
        touch = self._scripts["TOUCH"]
        sent: list[tuple[_Held, bool]] = []
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for held in batch:
                    # Released in the same tick as its first file: the release waits a tick
                    # (the first call counts one file).
                    release = held.releasing and held.announced
                    mode = ("" if held.in_store else "h") + ("r" if release else "")
                    await touch(
                        keys=self._keys(held.digest),
                        args=[
                            *self._args(),
                            held.digest,
                            mode or "c",
                            held.stored if held.announced else min(held.stored, 1),
                            "" if held.in_store else held.entry,
                            held.number,
                            held.tally.progress_sent,
                        ],
                        client=pipe,
                    )
                    sent.append((held, release, not held.in_store))
                await self._scripts["BEAT"](
                    keys=[scripts.META_KEY, scripts.DUE_KEY], args=self._args(), client=pipe
                )
                *answers, beat = await pipe.execute()
        except BaseException:
            for held in batch:  # all of it again, with what was noted meanwhile
                self._dirty.setdefault(held.digest, held)
            raise
        self._reachable()
        silence = self._store_since(int(beat[1]))
        now = self._loop.time()
        progress = self._progress
        for (held, releasing, holding), answer in zip(sent, answers, strict=True):
            count, publish, server_now = int(answer[0]), int(answer[1]), int(answer[2])
            if count == -2 and held.releasing and server_now - held.confirmed < self._lease_ms:
                # Registered after our release (applied before, its reply lost): our files
                # are in it, our hold could not have lapsed. Nothing more to send.
                if self._held.get(held.digest) is held:
                    del self._held[held.digest]
                continue
            if count < 0:  # not held in the store any more: hold it again, count again
                log.warning(
                    "the series store lost this replica's hold on series %s from %s (the"
                    " store restarted empty, or the hold lapsed): held again",
                    held.tally.series_instance_uid,
                    held.tally.pacs_name,
                )
                held.in_store = False
                self._note(held)
                continue
            held.in_store = True
            if holding:
                held.confirmed = server_now
            if not held.announced:
                held.announced = True
                if held.stored > 1 or held.releasing:
                    self._note(held)  # the rest of its count, its release: next tick
            if releasing:
                if held.releasing:  # released in the store: no longer ours to send
                    if self._held.get(held.digest) is held:
                        del self._held[held.digest]
                else:  # held again meanwhile: hold it again in the store
                    held.in_store = False
                    self._note(held)
            if publish and progress is not None and count > held.tally.count:
                held.tally.count = count
                progress.stored(held.tally, now)
        if again or silence:
            # Within the store's grace after a silence, before any decision is taken.
            await self._mark_again()

    # -- renewals and the sweep ------------------------------------------------------

    async def _renew_loop(self) -> None:
        period = self.lease / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self._mark_done()
                await self._renew()
                await self._sweep()
            except (RedisError, OSError) as error:
                self._unreachable_now(error)

    async def _renew(self) -> None:
        held = [h for h in self._held.values() if h.in_store]
        renew = self._scripts["RENEW"]
        for start in range(0, len(held), RENEW_CHUNK):
            chunk = held[start : start + RENEW_CHUNK]
            keys = [scripts.META_KEY, scripts.DUE_KEY]
            keys += [scripts.series_key(h.digest) for h in chunk]
            answer = await renew(keys=keys, args=[*self._args(), *(h.digest for h in chunk)])
            server_now, lost = int(answer[0]), {int(position) - 1 for position in answer[1]}
            for position, renewed in enumerate(chunk):
                if position in lost:
                    renewed.in_store = False
                    self._note(renewed)
                else:
                    renewed.confirmed = server_now
        self._reachable()

    async def _sweep(self) -> None:
        sweep = self._scripts["SWEEP"]
        digests = await sweep(
            keys=[scripts.META_KEY, scripts.DUE_KEY], args=[*self._args(), SWEEP_CHUNK]
        )
        now = self._loop.time()
        watched_digests = {w.series.digest for w in self._watches}
        for raw in digests:
            digest = _text(raw)
            if digest in self._held or digest in watched_digests or digest in self._undone:
                continue
            key = f"sweep-{digest}"
            self._watch(PendingSeries(digest, key, "", "", ""), now, orphan=True)

    # -- helpers ---------------------------------------------------------------------

    def _keys(self, digest: str) -> list[str]:
        return [scripts.META_KEY, scripts.DUE_KEY, scripts.series_key(digest)]

    def _args(self) -> list[str | int]:
        return [self.replica, self._lease_ms, self._settle_ms]

    def _unreachable_now(self, error: BaseException) -> None:
        self._hold_again = True
        self._wake_sync.set()
        if not self._unreachable:
            self._unreachable = True
            log.error(
                "series store %s unreachable (%s): reception goes on, registrations of"
                " series wait for it (retried)",
                _redact(self.url),
                error,
            )

    def _reachable(self) -> None:
        if self._unreachable:
            self._unreachable = False
            log.warning("series store %s reachable again", _redact(self.url))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"
