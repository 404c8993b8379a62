"""RQ's units: a queued or scheduled job id travels with its job hash (fields and PTTL).

An RQ worker that pops an id whose `rq:job:<id>` hash is missing skips it silently, so the
hash is part of the item. The claim takes the ids with the primitive RQ's own consumers use
(the left end of the queue list, where BLMOVE/BLPOP take; ZREM of scheduled ids, but only
where RQ's scheduler, which does not claim, cannot be reading them) and deletes their hashes
in the same atomic step; the apply writes each hash before its id, refusing a batch whose id
already has a hash on NEW (a reused custom job id) before writing anything.

Items are packed as {id, {field, value, ...}, pttl[, score]}; PTTL -1 means no expiry and -2
a hash that was already gone on OLD (the id moves alone, and NEW's worker skips it as OLD's
would have).
"""

from __future__ import annotations

from supervisor.layouts.base import Unit
from supervisor.layouts.plain import CLAIM_HELPERS

# Reads one job hash into `taken`; returns its byte size, or an error reply for a job key of
# another type (nothing has been written yet when a claim calls it).
_TAKE_JOB = """
local function take_job(job_prefix, id, taken, score)
  local job = job_prefix .. id
  local found = redis.call('TYPE', job)['ok']
  if found ~= 'hash' and found ~= 'none' then
    return nil, redis.error_reply('WRONGTYPE ' .. job .. ' is a ' .. found .. ', not a hash')
  end
  local fields = redis.call('HGETALL', job)
  local item = {id, fields, redis.call('PTTL', job)}
  if score then item[4] = score end
  taken[#taken + 1] = item
  local bytes = #id
  for i = 1, #fields do bytes = bytes + #fields[i] end
  return bytes, nil
end
"""

# KEYS: queue list, journal, sequence. ARGV: limit, max bytes, claimed_at, queues set, queue
# key (the member RQ's `queues` set holds), job prefix. Oldest first, from the left.
claim_queue_lua = (
    """
local source, journal, sequence = KEYS[1], KEYS[2], KEYS[3]
local limit, max_bytes, claimed_at = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local queues, queue, job_prefix = ARGV[4], ARGV[5], ARGV[6]
"""
    + CLAIM_HELPERS
    + _TAKE_JOB
    + """
local stop = refuse(source, journal, 'list')
if stop then return stop end
local taken = {}
local members, err = claim_pages(limit, max_bytes, 1, function(from, page)
  return redis.call('LRANGE', source, from, from + page - 1)
end, function(got, i)
  return take_job(job_prefix, got[i], taken)
end)
if err then return err end
if members == 0 then return {0} end
local packed = cmsgpack.pack(taken)
redis.call('HSET', journal, 'source', source, 'kind', 'rq_list', 'count', members,
           'items', packed, 'seq', redis.call('INCR', sequence), 'claimed_at', claimed_at,
           'queues', queues, 'queue', queue, 'job_prefix', job_prefix)
redis.call('LTRIM', source, members, -1)
for i = 1, members do redis.call('DEL', job_prefix .. taken[i][1]) end
return {members, packed}
"""
)

# KEYS: registry zset, journal, sequence, and for `scheduled` RQ's scheduler lock. ARGV:
# limit, max score, max bytes, claimed_at, queues set, queue key, job prefix, lock token,
# margin seconds, lock TTL seconds. RQ's scheduler reads due ids and ZREMs them later without
# checking, so a ZREM of ours could race it: with the lock free we take it (and so keep any
# scheduler from starting a tick) and claim everything; while a scheduler holds it we claim
# only ids due later than the margin, which no tick of it can be reading.
claim_registry_lua = (
    """
local source, journal, sequence, lock = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local limit, max_score = tonumber(ARGV[1]), ARGV[2]
local max_bytes, claimed_at = tonumber(ARGV[3]), ARGV[4]
local queues, queue, job_prefix = ARGV[5], ARGV[6], ARGV[7]
local token, margin, lock_ttl = ARGV[8], tonumber(ARGV[9] or 0), tonumber(ARGV[10] or 0)
"""
    + CLAIM_HELPERS
    + _TAKE_JOB
    + """
local stop = refuse(source, journal, 'zset')
if stop then return stop end
local min_score = '-inf'
if lock then
  local holder = redis.call('GET', lock)
  if not holder or holder == token then
    redis.call('SET', lock, token, 'EX', lock_ttl)
  else
    min_score = '(' .. (tonumber(redis.call('TIME')[1]) + margin)
  end
end
local taken = {}
local members, err = claim_pages(limit, max_bytes, 2, function(from, page)
  return redis.call('ZRANGEBYSCORE', source, min_score, max_score, 'WITHSCORES', 'LIMIT', from, page)
end, function(got, i)
  local size, failed = take_job(job_prefix, got[i], taken, got[i + 1])
  if failed then return nil, failed end
  return size + #got[i + 1], nil
end)
if err then return err end
if members == 0 then return {0} end
local packed = cmsgpack.pack(taken)
redis.call('HSET', journal, 'source', source, 'kind', 'rq_zset', 'count', members,
           'items', packed, 'seq', redis.call('INCR', sequence), 'claimed_at', claimed_at,
           'queues', queues, 'queue', queue, 'job_prefix', job_prefix)
for i = 1, members do
  redis.call('ZREM', source, taken[i][1])
  redis.call('DEL', job_prefix .. taken[i][1])
end
return {members, packed}
"""
)

# KEYS: destination, applied marker, queues set. ARGV: batch id, kind, items, queue key, now,
# marker TTL, states (plain units' only: unused), job prefix. Returns the count applied, 0 for
# a batch applied before.
apply_lua = """
local dest, applied, queues = KEYS[1], KEYS[2], KEYS[3]
local batch_id, kind, items, queue = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, ttl_s, job_prefix = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[8]

local want = ({rq_list = 'list', rq_zset = 'zset'})[kind]
if not want then return redis.error_reply('ERR unknown journal kind ' .. kind) end
local found = redis.call('TYPE', dest)['ok']
if found ~= 'none' and found ~= want then
  return redis.error_reply('WRONGTYPE ' .. dest .. ' is a ' .. found .. ', not a ' .. want)
end
if redis.call('ZSCORE', applied, batch_id) then
  redis.call('EXPIRE', applied, ttl_s)  -- a write for WAIT to cover (see plain.apply_lua)
  return 0
end
local list = cmsgpack.unpack(items)
for _, item in ipairs(list) do
  local job = job_prefix .. item[1]
  if #item[2] > 0 and redis.call('EXISTS', job) == 1 then
    return redis.error_reply('BUSYKEY ' .. job .. ' already exists on NEW (a reused job id)')
  end
end
for _, item in ipairs(list) do
  local job = job_prefix .. item[1]
  if #item[2] > 0 then  -- the hash first: a worker never pops an id without its job
    redis.call('HSET', job, unpack(item[2]))
    if item[3] > 0 then redis.call('PEXPIRE', job, item[3]) end
  end
  if kind == 'rq_list' then
    redis.call('RPUSH', dest, item[1])
  else
    redis.call('ZADD', dest, item[4], item[1])
  end
end
redis.call('SADD', queues, queue)
redis.call('ZADD', applied, now, batch_id)
redis.call('ZREMRANGEBYSCORE', applied, '-inf', now - ttl_s)
redis.call('EXPIRE', applied, ttl_s)
return #list
"""

RQ_LIST = Unit("rq_list", "list", False, claim_queue_lua, apply_lua)
RQ_ZSET = Unit("rq_zset", "zset", True, claim_registry_lua, apply_lua)
