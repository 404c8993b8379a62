"""Crash safety with real processes: `cointoss migrate` SIGKILLed at random moments, then rerun.

Iterable jobs' `it-<jid>` states (Sidekiq 7.3+) must arrive on NEW with their jobs, exactly once
and with their expiry, whatever instant the kill hit.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time

import pytest
import redis

from supervisor import constants as k
from supervisor.demo.embedded_redis import RedisServer
from tests.conftest import child_env, cointoss_argv

SETS = ("schedule", "retry", "dead")
KILLS = 20


ITERABLE_EVERY = 7  # one job in 7 is a Sidekiq 7.3+ iterable job with its `it-<jid>` state


def seed(client: redis.Redis, members: int, list_items: int, rng: random.Random) -> None:
    """Job-shaped members spread over the three sets, and one long queue list; some jobs are
    iterable, with a state hash (most with a TTL, as Sidekiq writes it, a few without)."""
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for i in range(members):
        job = {"class": "RecordJob", "args": [i], "jid": f"{i:024x}", "queue": "default"}
        pipe.zadd(SETS[i % 3], {json.dumps(job): now + rng.uniform(-86400, 30 * 86400)})
        if i % ITERABLE_EVERY == 0:
            iterable_state(pipe, job["jid"], i, rng)
        if i % 5000 == 4999:
            pipe.execute()
    items = [f"item-{i}" for i in range(list_items)]
    for i in range(0, list_items, ITERABLE_EVERY):
        jid = f"{members + i:024x}"
        items[i] = json.dumps({"class": "RecordJob", "args": [i], "jid": jid, "queue": "default"})
        iterable_state(pipe, jid, i, rng)
    pipe.rpush("queue:default", *items)
    pipe.sadd("queues", "default")
    pipe.execute()


def iterable_state(pipe: redis.client.Pipeline, jid: str, i: int, rng: random.Random) -> None:
    """`it-<jid>` as Sidekiq 7.3's iterable.rb writes it (executions, cursor, runtime)."""
    pipe.hset(f"it-{jid}", mapping={"ex": i % 4, "c": json.dumps(i * 10), "rt": i / 8})
    if i % (ITERABLE_EVERY * 5):
        pipe.pexpire(f"it-{jid}", int(rng.uniform(1, 30) * 86400_000))


def exact_expiry(client: redis.Redis) -> bool:
    """PEXPIRETIME (Redis 7.0+, Valkey) reads an absolute expiry to the millisecond; Redis 6.2
    has only TIME + PTTL, which the mover uses there too, so it is exact to about a second."""
    try:
        client.pexpiretime("it-probe")
    except redis.ResponseError:
        return False
    return True


def states(client: redis.Redis) -> dict[bytes, tuple[dict[bytes, bytes], int]]:
    """Every iterable-job state: its fields and its absolute expiry in ms (-1: none)."""
    keys = list(client.scan_iter(match="it-*", count=1000))
    exact = exact_expiry(client)
    seconds, micros = client.time()
    now_ms = 0 if exact else seconds * 1000 + micros // 1000
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
        (pipe.pexpiretime if exact else pipe.pttl)(key)
    replies = pipe.execute()
    expiries = [ms if ms < 0 else now_ms + ms for ms in replies[1::2]]
    return dict(zip(keys, zip(replies[::2], expiries, strict=True), strict=True))


def contents(client: redis.Redis) -> dict[str, list[object]]:
    """Each set with its exact score strings, and the list in order."""
    found: dict[str, list[object]] = {
        key: client.zrange(key, 0, -1, withscores=True, score_cast_func=bytes) for key in SETS
    }
    found["queue:default"] = client.lrange("queue:default", 0, -1)
    return found


def remaining(client: redis.Redis) -> int:
    pipe = client.pipeline(transaction=False)
    for key in SETS:
        pipe.zcard(key)
    pipe.llen("queue:default")
    return sum(pipe.execute())


def kill_and_rerun(old: RedisServer, new: RedisServer, batch: int, seed_value: int) -> int:
    """Starts migrate KILLS times and SIGKILLs it: half at a random instant after spawn (start-up,
    replay) but no later than its first claims, half once a random share of what is left has
    moved (anywhere in any key). Returns how many kills left a journal behind.

    The first kind stops as soon as anything moved: a mover that moves everything in a fraction
    of a second would otherwise finish within the random delay, leaving nothing for later kills.
    """
    rng = random.Random(seed_value)
    env = child_env({"MIGRATION_OLD_REDIS_URL": old.url, "MIGRATION_NEW_REDIS_URL": new.url})
    argv = cointoss_argv("migrate", "--only", "schedule,retry,dead,queues", "--batch", str(batch))
    client = old.client()
    torn = 0
    for attempt in range(KILLS):
        left = remaining(client)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt % 2 == 0:
            instant = time.monotonic() + rng.uniform(0.0, 2.5)
            while time.monotonic() < instant and remaining(client) == left and proc.poll() is None:
                time.sleep(0.001)
        else:
            target = left - rng.uniform(0.05, 0.9) * left
            deadline = time.monotonic() + 60
            while remaining(client) > target and proc.poll() is None:
                assert time.monotonic() < deadline, "migrate did not get that far"
                time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        torn += bool(list(client.scan_iter(match=k.MIGRATE_JOURNAL_PREFIX + "*")))
    return torn


def finish(old: RedisServer, new: RedisServer) -> subprocess.CompletedProcess[str]:
    env = child_env({"MIGRATION_OLD_REDIS_URL": old.url, "MIGRATION_NEW_REDIS_URL": new.url})
    argv = cointoss_argv("migrate", "--only", "schedule,retry,dead,queues", "--json")
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def check_converged(
    old: RedisServer,
    new: RedisServer,
    want: dict[str, list[object]],
    want_states: dict[bytes, tuple[dict[bytes, bytes], int]],
) -> None:
    old_client, new_client = old.client(), new.client()
    assert contents(new_client) == want
    assert remaining(old_client) == 0
    got_states = states(new_client)
    assert {key: fields for key, (fields, _) in got_states.items()} == {
        key: fields for key, (fields, _) in want_states.items()
    }
    slack = 0 if exact_expiry(new_client) else 1000  # to the millisecond where it can be read
    for key, (_, expiry) in want_states.items():  # the same absolute expiry
        assert abs(got_states[key][1] - expiry) <= slack, key
        assert (got_states[key][1] < 0) == (expiry < 0), key
    assert states(old_client) == {}
    assert list(old_client.scan_iter(match=k.MIGRATE_JOURNAL_PREFIX + "*")) == []
    assert new_client.smembers("queues") == {b"default"}


def run_crash_scenario(
    old: RedisServer, new: RedisServer, members: int, list_items: int, batch: int
) -> None:
    rng = random.Random(members)
    seed(old.client(), members, list_items, rng)
    want, want_states = contents(old.client()), states(old.client())
    torn = kill_and_rerun(old, new, batch, members)
    result = finish(old, new)
    assert result.returncode == 0, result.stderr
    check_converged(old, new, want, want_states)
    assert torn >= 1, "no kill landed between a claim and its ack"


class TestCrashSafety:
    def test_sigkilled_migrate_converges_without_loss_or_duplicates(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """20 SIGKILLs at random moments and a final run: NEW holds exactly OLD's original data."""
        run_crash_scenario(old_redis, new_redis, members=6000, list_items=1000, batch=20)

    @pytest.mark.slow
    def test_full_size_sigkilled_migrate_converges(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """The issue's full size: 100,000 members over schedule/retry/dead plus a 10,000-item list."""
        run_crash_scenario(old_redis, new_redis, members=100_000, list_items=10_000, batch=500)
