"""The Lua scripts: every step that must not be split by a crash runs as one script.

Each script names its KEYS/ARGV in locals first. Payloads travel as exact bytes; scripts never
re-serialise JSON (cjson would reorder keys and reformat floats).
"""

from __future__ import annotations

# Acknowledge finished jobs, then take a batch from the first non-empty queue (in the order
# given) into this process's in-flight list for that queue. The batch is at most ARGV max_batch
# and at most the queue's length / divisor (the concurrency), so a short queue is shared
# between processes instead of being hoarded by one.
# KEYS: pairs (queue:<q>, in-flight list of q). ARGV: max_batch, divisor, number of acks, then
# (pair index, payload) per ack. Returns {pair index, payload...} or nil.
FETCH = """
local max_batch, divisor, acks = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, acks do
  local pair, payload = tonumber(ARGV[2 + 2 * i]), ARGV[3 + 2 * i]
  redis.call('LREM', KEYS[2 * pair], 1, payload)
end
for pair = 1, #KEYS / 2 do
  local queue, inflight = KEYS[2 * pair - 1], KEYS[2 * pair]
  local length = redis.call('LLEN', queue)
  if length > 0 then
    local wanted = math.min(max_batch, math.max(1, math.floor(length / divisor)))
    local taken = {pair}
    for _ = 1, wanted do
      local payload = redis.call('RPOPLPUSH', queue, inflight)
      if not payload then
        break
      end
      taken[#taken + 1] = payload
    end
    return taken
  end
end
return nil
"""

# Put an unfinished job back, unchanged, at the end BRPOP reads first -- unless it already left
# the in-flight list (its thread acknowledged it meanwhile), so it is never doubled.
# KEYS: in-flight list, queue:<q>, queues. ARGV: payload, queue name.
REQUEUE = """
local inflight, queue, queues = KEYS[1], KEYS[2], KEYS[3]
local payload, name = ARGV[1], ARGV[2]
if redis.call('LREM', inflight, 1, payload) == 1 then
  redis.call('RPUSH', queue, payload)
  redis.call('SADD', queues, name)
  return 1
end
return 0
"""

# Give an orphan in-flight list back to its queue if its owner has no live heartbeat. Oldest job
# ends up at the tail, so it runs first. KEYS: <identity>, in-flight list, queue:<q>, queues.
# ARGV: queue name. Returns the number of jobs moved, or -1 when the owner is alive.
RECOVER = """
local heartbeat, inflight, queue, queues = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local name = ARGV[1]
if redis.call('EXISTS', heartbeat) == 1 then
  return -1
end
local moved = 0
local payload = redis.call('LPOP', inflight)
while payload do
  redis.call('RPUSH', queue, payload)
  moved = moved + 1
  payload = redis.call('LPOP', inflight)
end
if moved > 0 then
  redis.call('SADD', queues, name)
end
return moved
"""

# Claim one due member of `schedule`/`retry` and push its refreshed JSON in the same step: no
# crash can lose it in between (Sidekiq OSS pops, then pushes in a second round trip).
# KEYS: set, queue:<q>, queues. ARGV: member (exact bytes), new payload, queue name.
ENQUEUE_DUE = """
local set, queue, queues = KEYS[1], KEYS[2], KEYS[3]
local member, payload, name = ARGV[1], ARGV[2], ARGV[3]
if redis.call('ZREM', set, member) == 1 then
  redis.call('SADD', queues, name)
  redis.call('LPUSH', queue, payload)
  return 1
end
return 0
"""

# Move a job out of its source (an in-flight list or a sorted set) into `retry` or `dead` in one
# step, with Sidekiq's dead-set trim (by age, then keep 9,999 members: Sidekiq's own off-by-one).
# KEYS: source, target zset. ARGV: source kind ('list'/'zset'), member, score, payload,
# trim ('1' for dead), cut-off score (members at or below it go), max members.
SETTLE = """
local source, target = KEYS[1], KEYS[2]
local kind, member, score, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local trim, oldest, max_jobs = ARGV[5], ARGV[6], tonumber(ARGV[7])
local removed
if kind == 'list' then
  removed = redis.call('LREM', source, 1, member)
else
  removed = redis.call('ZREM', source, member)
end
if removed == 0 then
  return 0  -- no longer ours: another process claimed or recovered it
end
redis.call('ZADD', target, score, payload)
if trim == '1' then
  redis.call('ZREMRANGEBYSCORE', target, '-inf', oldest)
  redis.call('ZREMRANGEBYRANK', target, 0, -max_jobs)
end
return 1
"""

# Release a lock only if we still hold it. KEYS: lock. ARGV: owner.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
