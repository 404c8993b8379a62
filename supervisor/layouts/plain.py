"""Plain units: items that are self-contained (a Celery message, a Sidekiq job with its iterable
state when it has one), moved alone.

These are the mover's server-side steps: each runs atomically, so a kill can only fall between them.

A claimed batch travels as one MessagePack blob (Lua's built-in `cmsgpack`): members stay raw
bytes, scores stay the exact strings Redis printed, list items stay in order, and the Python
side never touches a member. Every script checks key types before its first write, because a
script error does not roll back what it already wrote.
"""

from __future__ import annotations

from supervisor.layouts.base import Unit
from supervisor.layouts.sidekiq.iterable import PUT_STATES_LUA, TAKE_STATES_LUA

# Shared by every unit's claim (RQ's too). Page sizes grow once the first page shows how big
# members are, so one call holds at most `max_bytes` (plus one member) in memory, whether
# members are 200 bytes or 1 MB. `claim_pages` reads pages with `fetch(members, page)` (replies
# of `stride` entries a member) and hands each member's first entry index to `take`, which
# records it and returns its byte size, or nil and an error reply; it returns the member count
# and that error.
CLAIM_HELPERS = """
local function next_page(limit, max_bytes, members, bytes)
  local fit = math.floor((max_bytes - bytes) * members / bytes)
  return math.max(1, math.min(limit - members, fit, 512))
end

local function claim_pages(limit, max_bytes, stride, fetch, take)
  local members, bytes, page = 0, 0, math.min(limit, 8)
  while members < limit and bytes < max_bytes do
    local got = fetch(members, page)
    for i = 1, #got, stride do
      local size, err = take(got, i, members)
      if err then return members, err end
      members = members + 1
      bytes = bytes + size
      if bytes >= max_bytes then break end
    end
    if #got < stride * page then break end
    page = next_page(limit, max_bytes, members, bytes)
  end
  return members, nil
end

-- Why a claim must not start: {0} when the source is gone, an error reply for a source of
-- another type or a journal id already taken; nil when it may go on.
local function refuse(source, journal, kind)
  local found = redis.call('TYPE', source)['ok']
  if found == 'none' then return {0} end
  if found ~= kind then
    return redis.error_reply('WRONGTYPE ' .. source .. ' is a ' .. found .. ', not a ' .. kind)
  end
  if redis.call('EXISTS', journal) == 1 then
    return redis.error_reply('BUSYKEY ' .. journal .. ' already exists')
  end
  return nil
end
"""

# Takes up to ARGV[1] members of the sorted set KEYS[1] with score <= ARGV[2] (lowest first),
# records them in the journal hash KEYS[2] as (score, member) pairs, then removes them inside
# the same script, as Sidekiq's poller claims, so a poller on OLD and the mover never both win
# a member. The journal also gets `seq`, the next value of OLD's counter KEYS[3] (replay order,
# see claim_list_lua), `claimed_at`, the mover's clock ARGV[4] (for operators only), and
# `states`, the iterable-job states under the key prefix ARGV[5] (taken from OLD too).
# Returns {count, packed items[, packed states when any]}.
claim_zset_lua = (
    """
local source = KEYS[1]
local journal = KEYS[2]
local sequence = KEYS[3]
local limit = tonumber(ARGV[1])
local max_score = ARGV[2]
local max_bytes = tonumber(ARGV[3])
local claimed_at = ARGV[4]
local prefix = ARGV[5] or ''
"""
    + CLAIM_HELPERS
    + TAKE_STATES_LUA  # a Sidekiq iterable job's state goes with its job (iterable.py)
    + """
local stop = refuse(source, journal, 'zset')
if stop then return stop end
local taken = {}
local members = claim_pages(limit, max_bytes, 2, function(from, page)
  return redis.call('ZRANGEBYSCORE', source, '-inf', max_score, 'WITHSCORES', 'LIMIT', from, page)
end, function(got, i, n)
  taken[2 * n + 1] = got[i + 1]  -- score first: the order ZADD takes on NEW
  taken[2 * n + 2] = got[i]
  return #got[i] + #got[i + 1]
end)
if members == 0 then return {0} end
local packed = cmsgpack.pack(taken)
local states = take_states(taken, 2, 2, prefix)
redis.call('HSET', journal, 'source', source, 'kind', 'zset', 'count', members,
           'items', packed, 'seq', redis.call('INCR', sequence), 'claimed_at', claimed_at)
if states then redis.call('HSET', journal, 'states', states) end
-- The claimed members are exactly ranks 0..members-1 (lowest scores, read in one atomic
-- call), so one range removal does what `members` ZREMs would, without a lookup each.
redis.call('ZREMRANGEBYRANK', source, 0, members - 1)
if states then return {members, packed, states} end
return {members, packed}
"""
)

# Takes up to ARGV[1] items from the head of the list KEYS[1] (newest first, so appending them
# at NEW's consuming end in this order keeps the original order), records them in the journal
# hash KEYS[2] with the `queues` set and queue name NEW must register, then LTRIMs them off.
# Batches must reach NEW in the order they left OLD, so the journal's `seq` is taken from OLD's
# counter KEYS[3] in the same atomic step: unlike `claimed_at` (the mover's clock ARGV[3]), it
# cannot be reordered by a clock stepping back or by skew between movers on several hosts.
# Iterable-job states (key prefix ARGV[6]) go into the journal's `states`, as in claim_zset_lua.
# Returns {count, packed items[, packed states when any]}.
claim_list_lua = (
    """
local source = KEYS[1]
local journal = KEYS[2]
local sequence = KEYS[3]
local limit = tonumber(ARGV[1])
local max_bytes = tonumber(ARGV[2])
local claimed_at = ARGV[3]
local queues = ARGV[4]
local queue = ARGV[5]
local prefix = ARGV[6] or ''
"""
    + CLAIM_HELPERS
    + TAKE_STATES_LUA
    + """
local stop = refuse(source, journal, 'list')
if stop then return stop end
local taken = {}
local members = claim_pages(limit, max_bytes, 1, function(from, page)
  return redis.call('LRANGE', source, from, from + page - 1)
end, function(got, i, n)
  taken[n + 1] = got[i]
  return #got[i] + 1
end)
if members == 0 then return {0} end
local packed = cmsgpack.pack(taken)
local states = take_states(taken, 1, 1, prefix)
redis.call('HSET', journal, 'source', source, 'kind', 'list', 'count', members,
           'items', packed, 'seq', redis.call('INCR', sequence), 'claimed_at', claimed_at,
           'queues', queues, 'queue', queue)
if states then redis.call('HSET', journal, 'states', states) end
redis.call('LTRIM', source, members, -1)
if states then return {members, packed, states} end
return {members, packed}
"""
)

# Applies one journalled batch to NEW unless its id is already in the applied-marker zset
# KEYS[2]: the marker, not ZADD's set semantics, stops a replay from bringing back a job
# NEW's poller already ran. Items go to KEYS[1] (ZADD with the original score strings, or
# RPUSH in journal order plus SADD of the queue name, if any, to KEYS[3]), and the batch's
# iterable-job states ARGV[7] ('' for none) next to them. Returns the count applied, 0 for a
# batch applied before. The marker is written last: a failed write leaves no marker.
apply_lua = (
    PUT_STATES_LUA
    + """
local dest = KEYS[1]
local applied = KEYS[2]
local queues = KEYS[3]
local batch_id = ARGV[1]
local kind = ARGV[2]
local items = ARGV[3]
local queue = ARGV[4]
local now = tonumber(ARGV[5])
local ttl_s = tonumber(ARGV[6])
local states = ARGV[7] or ''

if kind ~= 'zset' and kind ~= 'list' then
  return redis.error_reply('ERR unknown journal kind ' .. kind)
end
local found = redis.call('TYPE', dest)['ok']
if found ~= 'none' and found ~= kind then
  return redis.error_reply('WRONGTYPE ' .. dest .. ' is a ' .. found .. ', not a ' .. kind)
end
if redis.call('ZSCORE', applied, batch_id) then
  -- Applied before, maybe by another mover whose WAIT failed. Still write (and so replicate)
  -- something: since Redis 7.2 a WAIT only covers its own connection's propagated writes, and
  -- one that follows a no-op would let the journal be acked before a replica has the batch.
  redis.call('EXPIRE', applied, ttl_s)
  return 0
end
local list = cmsgpack.unpack(items)
if kind == 'zset' then
  for first = 1, #list, 512 do  -- (score, member) pairs, as the claim packed them
    redis.call('ZADD', dest, unpack(list, first, math.min(first + 511, #list)))
  end
else
  for first = 1, #list, 256 do
    redis.call('RPUSH', dest, unpack(list, first, math.min(first + 255, #list)))
  end
  if queue ~= '' then redis.call('SADD', queues, queue) end  -- Celery keeps no queues set
end
put_states(states)
redis.call('ZADD', applied, now, batch_id)
redis.call('ZREMRANGEBYSCORE', applied, '-inf', now - ttl_s)
redis.call('EXPIRE', applied, ttl_s)
if kind == 'zset' then return #list / 2 end
return #list
"""
)

ZSET = Unit("zset", "zset", True, claim_zset_lua, apply_lua)
LIST = Unit("list", "list", False, claim_list_lua, apply_lua)
