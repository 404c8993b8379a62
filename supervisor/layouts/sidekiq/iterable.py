"""Iterable jobs' state (Sidekiq 7.3+), moved with its job inside the mover's Lua scripts.

An iterable job keeps its cursor in the hash `it-<jid>` (fields `ex`, `c`, `rt`, maybe
`cancelled`; EXPIRE 30 days, job/iterable.rb). A job moved without it starts over from its first
element on NEW and repeats the work already done, so the claim takes the state into the same
journal as its job (and deletes it from OLD in the same atomic step), and the apply writes it on
NEW in the same atomic step as the job, at the same absolute expiry.

The state travels as (key, expiry in epoch ms or -1, {field, value, ...}) triples, packed with
Lua's `cmsgpack`. Hash fields are copied rather than DUMPed, so OLD and NEW may run different
Redis or Valkey versions (a DUMP payload only restores on a server that reads its RDB version).
"""

from __future__ import annotations

STATE_PREFIX = "it-"  # <prefix>it-<jid>

# take_states(taken, first, step, prefix): the states of the claimed members taken[first],
# taken[first + step], ..., removed from OLD; nil when none has one. Ordinary jobs cost a plain
# search for `"jid"` each (about 0.8 us, a third more of OLD's claim CPU: benchmarks/) and one
# EXISTS per 512: a member is decoded only when some `it-` key named in it exists, and then its
# own top-level `jid` decides (a jid inside `args` does not).
TAKE_STATES_LUA = (
    """
local STATE_PREFIX = '"""
    + STATE_PREFIX
    + """'
local function state_keys(taken, first, step, prefix)
  local keys = {}
  local find, match, head = string.find, string.match, prefix .. STATE_PREFIX
  for i = first, #taken, step do
    local member = taken[i]
    local at = find(member, '"jid"', 1, true)
    while at do
      local jid = match(member, '^%s*:%s*"([^"\\\\]+)"', at + 5)
      if jid then keys[#keys + 1] = head .. jid end
      at = find(member, '"jid"', at + 5, true)
    end
  end
  return keys
end

local function any_exists(keys)
  for first = 1, #keys, 512 do
    if redis.call('EXISTS', unpack(keys, first, math.min(first + 511, #keys))) > 0 then
      return true
    end
  end
  return false
end

-- The absolute expiry in ms, or -1: PEXPIRETIME (Redis 7.0+), else TIME + PTTL (6.2).
local function expiry_ms(key)
  local exact = redis.pcall('PEXPIRETIME', key)
  if type(exact) == 'number' then return exact end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then return -1 end
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) + ttl
end

local function take_states(taken, first, step, prefix)
  if not any_exists(state_keys(taken, first, step, prefix)) then return nil end
  local states = {}
  for i = first, #taken, step do
    local ok, job = pcall(cjson.decode, taken[i])
    if ok and type(job) == 'table' and type(job.jid) == 'string' then
      local key = prefix .. STATE_PREFIX .. job.jid
      if redis.call('TYPE', key)['ok'] == 'hash' then
        states[#states + 1] = {key, expiry_ms(key), redis.call('HGETALL', key)}
        redis.call('DEL', key)
      end
    end
  end
  if #states == 0 then return nil end
  return cmsgpack.pack(states)
end
"""
)

# put_states(packed): writes each state on NEW in place of any it finds there, with its expiry.
PUT_STATES_LUA = """
local function put_states(packed)
  if packed == '' then return end
  for _, state in ipairs(cmsgpack.unpack(packed)) do
    local key, expire_at, fields = state[1], state[2], state[3]
    redis.call('DEL', key)
    for first = 1, #fields, 256 do
      redis.call('HSET', key, unpack(fields, first, math.min(first + 255, #fields)))
    end
    if expire_at >= 0 then redis.call('PEXPIREAT', key, expire_at) end
  end
end
"""
