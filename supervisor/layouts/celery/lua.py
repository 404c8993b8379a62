"""Celery's `unacked` unit: messages whose owner is gone for sure, put back on their queue on NEW.

kombu records a delivered message in the hash `unacked` (tag -> JSON [message, exchange,
routing_key]) and its delivery time in `unacked_index`; any consumer restores the entries older
than the visibility timeout to their queue, because their owner is presumed dead. On OLD no
consumer may be left to do that (workers SIGKILLed, or all moved to NEW), so the claim does
what kombu's restore does, atomically: it takes only entries older than the timeout (by OLD's
clock), resolves the queue as kombu does for a direct exchange (the routing key on the default
exchange, else the `_kombu.binding.<exchange>` members with that routing key), picks the
priority list, and HDELs and ZREMs the tag, which aborts a concurrent kombu restore (it WATCHes
`unacked`). The message's bytes are cut out of the stored triple verbatim (no `redelivered`
flag is added). Entries whose queue cannot be resolved stay (migrate reports them).

Items are packed as {destination list, message}; the apply RPUSHes each to its list, the end
BRPOP takes, as kombu's restore does.
"""

from __future__ import annotations

from supervisor.layouts.base import Unit
from supervisor.layouts.plain import CLAIM_HELPERS

# KEYS: unacked hash, journal, sequence, unacked_index. ARGV: limit, max bytes, claimed_at,
# key prefix, visibility timeout (s), separator, binding prefix.
claim_lua = (
    """
local source, journal, sequence, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local limit, max_bytes, claimed_at = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local prefix, timeout, sep, bindings = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
"""
    + CLAIM_HELPERS
    + """
-- Where the message object that starts the triple `[{...}, "exchange", "rk"]` ends.
local function object_end(s)
  local depth, in_string, i = 0, false, 2
  while i <= #s do
    local c = string.byte(s, i)
    if in_string then
      if c == 92 then i = i + 1 elseif c == 34 then in_string = false end
    elseif c == 34 then in_string = true
    elseif c == 123 then depth = depth + 1
    elseif c == 125 then
      depth = depth - 1
      if depth == 0 then return i end
    end
    i = i + 1
  end
  return nil
end

local function queues_for(exchange, routing_key)
  if exchange == '' then return {routing_key} end
  local found = {}
  for _, member in ipairs(redis.call('SMEMBERS', prefix .. bindings .. exchange)) do
    local first = string.find(member, sep, 1, true)
    if first and string.sub(member, 1, first - 1) == routing_key then
      local second = string.find(member, sep, first + #sep, true)
      if second then found[#found + 1] = string.sub(member, second + #sep) end
    end
  end
  return found
end

local function priority_suffix(message)
  local properties = type(message) == 'table' and message.properties or nil
  local priority = type(properties) == 'table' and tonumber(properties.priority) or 0
  if priority >= 9 then return sep .. '9' end
  if priority >= 6 then return sep .. '6' end
  if priority >= 3 then return sep .. '3' end
  return ''
end

local stop = refuse(source, journal, 'hash')
if stop then return stop end
local clock = redis.call('TIME')
local cutoff = tonumber(clock[1]) + tonumber(clock[2]) / 1000000 - timeout
local tags = redis.call('ZRANGEBYSCORE', index, '-inf', cutoff, 'LIMIT', 0, limit)
local taken, claimed, bytes = {}, {}, 0
for _, tag in ipairs(tags) do
  if bytes >= max_bytes then break end
  local raw = redis.call('HGET', source, tag)
  local ok, triple = false, nil
  if raw then ok, triple = pcall(cjson.decode, raw) end
  local stop_at = ok and type(triple) == 'table' and object_end(raw) or nil
  if stop_at and type(triple[2]) == 'string' and type(triple[3]) == 'string' then
    local message = string.sub(raw, 2, stop_at)
    local suffix = priority_suffix(triple[1])
    local queues = queues_for(triple[2], triple[3])
    for _, queue in ipairs(queues) do
      taken[#taken + 1] = {prefix .. queue .. suffix, message}
      bytes = bytes + #message
    end
    if #queues > 0 then claimed[#claimed + 1] = tag end
  end
end
if #taken == 0 then return {0} end
local packed = cmsgpack.pack(taken)
redis.call('HSET', journal, 'source', source, 'kind', 'celery_unacked', 'count', #taken,
           'items', packed, 'seq', redis.call('INCR', sequence), 'claimed_at', claimed_at,
           'queues', '', 'queue', '')
for _, tag in ipairs(claimed) do
  redis.call('HDEL', source, tag)
  redis.call('ZREM', index, tag)
end
return {#taken, packed}
"""
)

# KEYS: unacked hash (for the label), applied marker, unused. ARGV: batch id, kind, items,
# queue, now, marker TTL. Returns the count applied, 0 for a batch applied before.
apply_lua = """
local applied = KEYS[2]
local batch_id, kind, items = ARGV[1], ARGV[2], ARGV[3]
local now, ttl_s = tonumber(ARGV[5]), tonumber(ARGV[6])
if kind ~= 'celery_unacked' then return redis.error_reply('ERR unknown journal kind ' .. kind) end
local list = cmsgpack.unpack(items)
for _, item in ipairs(list) do
  local found = redis.call('TYPE', item[1])['ok']
  if found ~= 'none' and found ~= 'list' then
    return redis.error_reply('WRONGTYPE ' .. item[1] .. ' is a ' .. found .. ', not a list')
  end
end
if redis.call('ZSCORE', applied, batch_id) then
  redis.call('EXPIRE', applied, ttl_s)  -- a write for WAIT to cover (see plain.apply_lua)
  return 0
end
for _, item in ipairs(list) do redis.call('RPUSH', item[1], item[2]) end
redis.call('ZADD', applied, now, batch_id)
redis.call('ZREMRANGEBYSCORE', applied, '-inf', now - ttl_s)
redis.call('EXPIRE', applied, ttl_s)
return #list
"""

UNACKED = Unit("celery_unacked", "hash", False, claim_lua, apply_lua)
