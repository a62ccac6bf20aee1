"""The Lua scripts of the Redis series store: each decision is one atomic script.

Keys (every one declared in ``KEYS``, as DragonflyDB requires; one hash tag, so one slot
of a Redis Cluster):

- ``{oxidicom-series}:meta`` (hash): ``beat``, the server time (ms) of the last call of any
  replica, ``since``, when calls resumed after a silence longer than half a lease (the
  store restarted, or was unreachable from every replica), and ``r:{replica}``, when each
  replica last reported (its *heartbeat*: the end of each of its batches of holds, counts
  and releases, at least every 250 ms).
- ``{oxidicom-series}:due`` (sorted set): series digest -> server time (ms) at which the
  series should next be looked at (the sweep of series whose holders all died).
- ``{oxidicom-series}:s:{digest}`` (hash), one per series: ``e`` its registration fields
  (the journal entry, JSON), ``n`` the files stored by every replica (``c:{replica}:{hold}``
  what each hold counted), ``p`` the highest count handed out for LONK progress (no
  publisher goes below it, so counts never go backwards on a subject), ``ps`` the highest
  its publishers reported as sent (a count handed out that a rate limit dropped, or that a
  replica killed did not send, is not in it: the registration's final progress is then
  sent), ``o`` the replica that publishes it (one at a time, so that messages of two
  replicas never overtake each other), ``h:{replica}`` each holder's lease end (ms),
  ``q`` the latest release (ms), ``c``/``ce`` the replica registering it and until when;
  once registered only ``x`` (the ``ndicom`` sent) stays, for a day.

Time is the server's (``TIME``), never a replica's clock. No series is decided while
the store has been reachable for less than a *grace* (a third of a lease, plus the
longest retry backoff of a replica) since a silence (``since``): replicas had no chance
yet to renew their holds, or to hold again what a store that restarted empty lost, so
none is judged dead and no series is registered without them. A store seen for the
first time cannot be told from one that restarted empty: its first decisions wait too.

Commands sent inside the scripts: TIME, HGET, HSET, HSETNX, HDEL, HEXISTS, HGETALL,
HINCRBY, EXISTS, DEL, PEXPIRE, ZADD, ZREM, ZRANGEBYSCORE; around them EVALSHA, SCRIPT
EXISTS and SCRIPT LOAD (redis-py loads a script the server does not know), PING at start,
HDEL at a clean stop.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "{oxidicom-series}:"
META_KEY: Final = PREFIX + "meta"
DUE_KEY: Final = PREFIX + "due"


def series_key(digest: str) -> str:
    return f"{PREFIX}s:{digest}"


#: KEYS[1] meta, KEYS[2] due, KEYS[3] the series (when any); ARGV[1] replica,
#: ARGV[2] lease (ms), ARGV[3] settle (ms).
_PRELUDE = """
local meta, due = KEYS[1], KEYS[2]
local rid = ARGV[1]
local lease = tonumber(ARGV[2])
local settle = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local beat = tonumber(redis.call('HGET', meta, 'beat') or '0')
if now - beat > lease / 2 then redis.call('HSET', meta, 'since', now) end
redis.call('HSET', meta, 'beat', now)
local since = tonumber(redis.call('HGET', meta, 'since'))
local function gone(s)
  return redis.call('HEXISTS', s, 'e') == 0 or redis.call('HEXISTS', s, 'x') == 1
end
"""

#: Hold, count, release: ARGV[4] digest, ARGV[5] mode ('h' hold first, 'r' release
#: after), ARGV[6] the files stored under this hold so far, ARGV[7] the entry (hold only),
#: ARGV[8] which hold of the replica, ARGV[9] the highest progress count this replica
#: handed to LONK for the series. Counts are whole, not increments: a call sent twice
#: (its reply lost with a connection) counts once.
#: Returns {n, publish, now}: publish 1 when the caller publishes progress n if its rate
#: limit lets it (it reports what it sent in its next call); n -1 when the series is not
#: held here in the store any more (lost, or registered without us): the caller holds it
#: again; -2 when a release finds it registered (the caller's files are in it unless its
#: hold lapsed first).
TOUCH: Final = (
    _PRELUDE
    + """
local s, digest, mode = KEYS[3], ARGV[4], ARGV[5]
if string.find(mode, 'h', 1, true) then
  if redis.call('HEXISTS', s, 'x') == 1 then redis.call('DEL', s) end
  redis.call('HSETNX', s, 'e', ARGV[7])
  redis.call('HSET', s, 'h:' .. rid, now + lease)
  redis.call('ZADD', due, now + lease + settle, digest)
elseif redis.call('HEXISTS', s, 'x') == 1 and string.find(mode, 'r', 1, true) then
  return {-2, 0, now}  -- registered after our hold went: with our files, unless it lapsed
elseif gone(s) or redis.call('HEXISTS', s, 'h:' .. rid) == 0 then
  return {-1, 0, now}
end
local counted = 'c:' .. rid .. ':' .. ARGV[8]
local stored = tonumber(ARGV[6])
local before = tonumber(redis.call('HGET', s, counted) or '0')
local n
if stored > before then
  redis.call('HSET', s, counted, stored)
  n = redis.call('HINCRBY', s, 'n', stored - before)
else
  n = tonumber(redis.call('HGET', s, 'n') or '0')
end
local releasing = string.find(mode, 'r', 1, true)
-- One holder at a time publishes progress (messages of two replicas' NATS connections
-- could overtake each other): the first, until its hold goes; then the next to call.
local owner = redis.call('HGET', s, 'o')
if owner ~= rid then
  local ends = owner and tonumber(redis.call('HGET', s, 'h:' .. owner) or '0') or 0
  if ends <= now and not releasing then
    redis.call('HSET', s, 'o', rid)
    owner = rid
  end
end
-- 'ps' is what a publisher says it sent, never what it was told to: a count its rate limit
-- dropped would otherwise stand for a message nobody got, and the registration leave its
-- final progress out. 'p', what was handed out, keeps the next publisher above it.
local sent = tonumber(ARGV[9] or '0')
if sent > tonumber(redis.call('HGET', s, 'ps') or '0') then redis.call('HSET', s, 'ps', sent) end
local publish = 0
if owner == rid and not releasing and n > tonumber(redis.call('HGET', s, 'p') or '0') then
  redis.call('HSET', s, 'p', n)
  publish = 1
end
if releasing then
  redis.call('HDEL', s, 'h:' .. rid)
  if now > tonumber(redis.call('HGET', s, 'q') or '0') then redis.call('HSET', s, 'q', now) end
  redis.call('ZADD', due, now + settle, digest)
end
return {n, publish, now}
"""
)

#: Renew this replica's holds: KEYS[3..] the series, ARGV[4..] their digests.
#: Returns {now, the 1-based positions of the series not held here any more}.
RENEW: Final = (
    _PRELUDE
    + """
local lost = {}
for i = 3, #KEYS do
  local s = KEYS[i]
  if gone(s) or redis.call('HEXISTS', s, 'h:' .. rid) == 0 then
    table.insert(lost, i - 2)
  else
    redis.call('HSET', s, 'h:' .. rid, now + lease)
    redis.call('ZADD', due, now + lease + settle, ARGV[i + 1])
  end
end
return {now, lost}
"""
)

#: Who registers a series released here: ARGV[4] digest, ARGV[5] '1' when the caller has
#: no entry of its own (the sweep of dead replicas' series), ARGV[6] '1' at a stop (the
#: quiet interval is not waited for; live holders and claims still are), ARGV[7] the
#: longest retry backoff of a replica (ms).
#: Returns {'mine', now, entry, n, ps} (the caller registers it, then calls DONE; ps: the
#: highest progress count reported sent, which its final progress must exceed),
#: {'gone', now} (registered already, or unknown to a sweep), or {'wait', now, until}.
DECIDE: Final = (
    _PRELUDE
    + """
local s, digest, orphan, force = KEYS[3], ARGV[4], ARGV[5] == '1', ARGV[6] == '1'
local function claim(entry, n, p)
  redis.call('HSET', s, 'c', rid, 'ce', now + lease)
  redis.call('ZADD', due, now + lease, digest)
  return {'mine', now, entry, n, p}
end
if orphan and redis.call('HEXISTS', s, 'e') == 0 then
  -- Nothing to register it from (none, or only a claim of a replica that registers it
  -- from its own journal after the store lost its data): not the sweep's.
  redis.call('ZREM', due, digest)
  return {'gone', now}
end
if redis.call('HEXISTS', s, 'x') == 1 then
  redis.call('ZREM', due, digest)
  return {'gone', now}
end
-- After a silence (the store restarted, with or without its data, or no replica could
-- reach it), no decision until every live replica renewed, or held again, its holds:
-- a renewal period, and the longest retry backoff of a replica's calls.
local grace = lease / 3 + tonumber(ARGV[7])
if now - since < grace then return {'wait', now, since + grace} end
-- Unknown to the store (it lost its data, or another replica's hold has not arrived):
-- taken as released now, and decided as any other once quiet and every replica reported
-- since; the caller then registers it with its own entry.
if redis.call('EXISTS', s) == 0 then
  redis.call('HSET', s, 'q', now)
  redis.call('ZADD', due, now + settle, digest)
  return {'wait', now, now + settle}
end
-- A claim is exclusive while it lasts, the caller's own included: two holds of one
-- replica on a series (an older one watched, a newer one settling) are decided in two
-- calls, and the second must not be told 'mine' again while the first registers it.
local c = redis.call('HGET', s, 'c')
if c then
  local ce = tonumber(redis.call('HGET', s, 'ce'))
  if ce > now then return {'wait', now, ce} end
end
local fields = redis.call('HGETALL', s)
local live = 0
local q = tonumber(redis.call('HGET', s, 'q') or '0')
local dead = {}
for i = 1, #fields, 2 do
  local f = fields[i]
  if string.sub(f, 1, 2) == 'h:' then
    local ends = tonumber(fields[i + 1])
    if ends > now then
      live = math.max(live, ends)
    else
      table.insert(dead, f)
      if ends > q then q = ends end
    end
  end
end
if live > 0 then
  redis.call('ZADD', due, live + settle, digest)
  return {'wait', now, live + settle}
end
for _, f in ipairs(dead) do redis.call('HDEL', s, f) end
redis.call('HSET', s, 'q', q)
local quiet = q + settle
if force then quiet = q end
if now < quiet then
  redis.call('ZADD', due, quiet, digest)
  return {'wait', now, quiet}
end
-- Every other live replica must have reported since the series became quiet: a hold it
-- noted before then (sent late: the store restarted, its link was down, it was paused)
-- is then in the store. A replica silent for a lease is dead: forgotten.
local replicas = redis.call('HGETALL', meta)
for i = 1, #replicas, 2 do
  local f = replicas[i]
  if string.sub(f, 1, 2) == 'r:' and f ~= 'r:' .. rid then
    local beat_at = tonumber(replicas[i + 1])
    if beat_at < now - lease then
      redis.call('HDEL', meta, f)
    elseif beat_at < quiet then
      return {'wait', now, now + 250}
    end
  end
end
return claim(redis.call('HGET', s, 'e') or '', tonumber(redis.call('HGET', s, 'n') or '0'),
  tonumber(redis.call('HGET', s, 'ps') or '0'))
"""
)

#: Registered: ARGV[4] digest, ARGV[5] ndicom, ARGV[6] how long the mark stays (ms).
#: Also sent again, for the series a replica registered lately, when the store had a
#: silence (it restarted, maybe empty): a holder still waiting for a decision on one of
#: them must be told 'gone', not find it unknown and register it a second time.
#: Returns 1 (marked), or 0 when the claim is another replica's, or the series is held
#: again (a new hold after the registration: a re-push, not ours to mark).
DONE: Final = (
    _PRELUDE
    + """
local s = KEYS[3]
if redis.call('HEXISTS', s, 'x') == 1 then return 1 end
local c = redis.call('HGET', s, 'c')
if c ~= rid and (c or redis.call('HEXISTS', s, 'e') == 1) then return 0 end
redis.call('DEL', s)
redis.call('HSET', s, 'x', ARGV[5])
redis.call('PEXPIRE', s, tonumber(ARGV[6]))
redis.call('ZREM', due, ARGV[4])
return 1
"""
)

#: A replica's heartbeat, sent last in each batch of its holds, counts and releases (and
#: alone when it has none): what it noted before is in the store.
#: Returns {now, since}: a ``since`` the replica has not seen before tells it the store had
#: a silence (a restart, maybe empty; a failover): it sends its holds and marks again.
BEAT: Final = (
    _PRELUDE
    + """
redis.call('HSET', meta, 'r:' .. rid, now)
return {now, since}
"""
)

#: Series due to be looked at by the sweep: ARGV[4] how many at most. Only those overdue
#: by half a lease: a live replica that released a series decides it when due itself.
SWEEP: Final = (
    _PRELUDE
    + """
return redis.call('ZRANGEBYSCORE', due, '-inf', now - lease / 2, 'LIMIT', 0, tonumber(ARGV[4]))
"""
)
