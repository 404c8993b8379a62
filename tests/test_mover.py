"""`run_move` against two real redis-servers: exactness, replay, concurrency and bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from supervisor import constants as k
from supervisor.demo.embedded_redis import SERVER_VARIABLE, RedisServer
from supervisor.errors import ConfigError, RedisUnavailableError, UsageError
from supervisor.layouts import plain as lua
from supervisor.layouts.sidekiq.layout import SidekiqLayout
from supervisor.migration import mover as mover_module
from supervisor.migration.mover import Mover, run_move
from supervisor.settings import Settings
from tests.conftest import child_env, cointoss_argv, heartbeat

ALL = frozenset({"schedule", "retry", "dead", "queues"})


def settings_for(old: RedisServer, new: RedisServer, **extra: Any) -> Settings:
    return Settings(old_redis_url=old.url, new_redis_url=new.url, **extra)


def snapshot(client: redis.Redis) -> dict[bytes, Any]:
    """Every key with its full contents (scores as Redis prints them): equal means untouched."""
    found: dict[bytes, Any] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"zset":
            found[key] = client.zrange(key, 0, -1, withscores=True, score_cast_func=bytes)
        elif kind == b"list":
            found[key] = client.lrange(key, 0, -1)
        elif kind == b"set":
            found[key] = client.smembers(key)
        elif kind == b"hash":
            found[key] = client.hgetall(key)
        else:
            found[key] = client.get(key)
    return found


def zset_items(client: redis.Redis, key: str) -> list[tuple[bytes, bytes]]:
    return client.zrange(key, 0, -1, withscores=True, score_cast_func=bytes)


def leftovers(client: redis.Redis) -> list[bytes]:
    """Every key but the claim counter, which stays on OLD by design."""
    return [key for key in client.scan_iter() if key != k.MIGRATE_SEQUENCE.encode()]


def journals(client: redis.Redis) -> list[bytes]:
    return list(client.scan_iter(match=k.MIGRATE_JOURNAL_PREFIX + "*"))


def claim(client: redis.Redis, source: str, journal_id: str, limit: int) -> list[Any]:
    """What a mover does first; stopping here is a mover SIGKILLed right after its claim."""
    journal = k.MIGRATE_JOURNAL_PREFIX + journal_id
    keys = [source, journal, k.MIGRATE_SEQUENCE]
    if client.type(source) == b"list":
        script = client.register_script(lua.claim_list_lua)
        return script(keys=keys, args=[limit, 1 << 22, "1.0", "queues", "q"])
    script = client.register_script(lua.claim_zset_lua)
    return script(keys=keys, args=[limit, "+inf", 1 << 22, "1.0"])


members = st.dictionaries(
    st.binary(max_size=64),
    st.floats(allow_nan=False, width=64),
    min_size=1,
    max_size=60,
)


class TestExactness:
    @hsettings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(schedule=members, retry=members, batch=st.integers(min_value=1, max_value=17))
    def test_members_and_score_strings_arrive_unchanged(
        self,
        old_redis: RedisServer,
        new_redis: RedisServer,
        schedule: dict[bytes, float],
        retry: dict[bytes, float],
        batch: int,
    ) -> None:
        """Any bytes, any score, any batch size: NEW ends with exactly OLD's members and scores."""
        old, new = old_redis.client(), new_redis.client()
        old.flushall()
        new.flushall()
        old.zadd("schedule", schedule)
        old.zadd("retry", retry)
        want = {key: zset_items(old, key) for key in ("schedule", "retry")}
        report = run_move(settings_for(old_redis, new_redis), batch=batch)
        assert report.moved == {"schedule": len(schedule), "retry": len(retry)}
        assert {key: zset_items(new, key) for key in ("schedule", "retry")} == want
        assert leftovers(old) == []

    def test_a_second_run_moves_nothing(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Idempotent: once OLD is empty, running again changes nothing anywhere."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("schedule", {f"job{i}": i for i in range(300)})
        first = run_move(settings_for(old_redis, new_redis), batch=64)
        before = snapshot(new)
        second = run_move(settings_for(old_redis, new_redis), batch=64)
        assert first.total == 300
        assert second.total == 0
        assert snapshot(new) == before

    def test_queue_lists_keep_their_order_and_are_registered(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A list arrives in its original order, behind nothing, and NEW's `queues` names it."""
        old, new = old_redis.client(), new_redis.client()
        old.lpush("queue:default", *[f"job{i}" for i in range(2500)])
        old.lpush("queue:critical", "c1")
        old.sadd("queues", "default", "critical")
        want = old.lrange("queue:default", 0, -1)
        report = run_move(settings_for(old_redis, new_redis), only=frozenset({"queues"}), batch=100)
        assert report.moved == {"queue:default": 2500, "queue:critical": 1}
        assert new.lrange("queue:default", 0, -1) == want
        assert new.smembers("queues") == {b"default", b"critical"}
        assert not old.exists("queue:default")

    def test_queue_lists_move_only_when_asked(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """The default (`schedule,retry`) leaves queues and `dead` to OLD's own workers."""
        old = old_redis.client()
        old.lpush("queue:default", "job")
        old.zadd("dead", {"corpse": 1})
        old.zadd("retry", {"again": 2})
        report = run_move(settings_for(old_redis, new_redis))
        assert report.moved == {"retry": 1}
        assert old.llen("queue:default") == 1
        assert old.zcard("dead") == 1

    def test_private_super_fetch_lists_are_never_moved(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """`queue:sq|*` holds a live Pro process's in-flight jobs: moving them would run them twice."""
        old = old_redis.client()
        old.lpush("queue:sq|host:1:abc|default", "in-flight")
        old.lpush("queue:default", "waiting")
        report = run_move(settings_for(old_redis, new_redis), only=ALL)
        assert report.moved == {"queue:default": 1}
        assert old.lrange("queue:sq|host:1:abc|default", 0, -1) == [b"in-flight"]

    def test_the_namespace_prefix_is_honoured(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """With MIGRATION_KEY_PREFIX only the namespaced keys move, to the same names on NEW."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("myapp:schedule", {"ns-job": 1})
        old.zadd("schedule", {"other-app": 1})
        old.lpush("myapp:queue:default", "q")
        old.sadd("myapp:queues", "default")
        settings = settings_for(old_redis, new_redis, key_prefix="myapp:")
        report = run_move(settings, only=ALL)
        assert report.moved == {"schedule": 1, "queue:default": 1}
        assert new.zrange("myapp:schedule", 0, -1) == [b"ns-job"]
        assert new.smembers("myapp:queues") == {b"default"}
        assert old.zrange("schedule", 0, -1) == [b"other-app"]

    def test_due_within_moves_only_what_comes_due(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """--due-within 60 leaves next week's jobs on OLD."""
        old, new = old_redis.client(), new_redis.client()
        now = time.time()
        old.zadd("schedule", {"soon": now + 30, "overdue": now - 5, "next-week": now + 7 * 86400})
        report = run_move(settings_for(old_redis, new_redis), due_within_s=60)
        assert report.total == 2
        assert set(new.zrange("schedule", 0, -1)) == {b"soon", b"overdue"}
        assert old.zrange("schedule", 0, -1) == [b"next-week"]

    def test_follow_with_due_within_ends_though_later_jobs_stay_on_old(
        self, old_redis: RedisServer, new_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--follow --due-within 60 stops once nothing due is left: next week's job, which it
        must not move, does not keep it looking at OLD forever."""
        monkeypatch.setattr(mover_module, "FOLLOW_INTERVAL_S", 0.01)
        old, new = old_redis.client(), new_redis.client()
        now = time.time()
        old.zadd("schedule", {"soon": now + 30, "next-week": now + 7 * 86400})
        reports: list[Any] = []
        settings = settings_for(old_redis, new_redis)
        mover = threading.Thread(
            target=lambda: reports.append(run_move(settings, due_within_s=60, follow=True)),
            daemon=True,
        )
        mover.start()
        mover.join(10)
        assert not mover.is_alive(), "--follow never ended"
        assert reports[0].moved == {"schedule": 1}
        assert new.zrange("schedule", 0, -1) == [b"soon"]
        assert old.zrange("schedule", 0, -1) == [b"next-week"]

    def test_follow_replays_a_journal_another_mover_left_meanwhile(
        self, old_redis: RedisServer, new_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """While --follow waits (a job still runs on OLD), another mover claims a batch and is
        killed: the follower applies that batch too, instead of ending with it stranded on OLD."""
        monkeypatch.setattr(mover_module, "FOLLOW_INTERVAL_S", 0.01)
        old, new = old_redis.client(), new_redis.client()
        old.zadd("schedule", {"first": 1})
        heartbeat(old, "host:1:busy", busy=1)  # keeps --follow going
        reports: list[Any] = []
        settings = settings_for(old_redis, new_redis)
        follower = threading.Thread(
            target=lambda: reports.append(run_move(settings, follow=True)), daemon=True
        )
        follower.start()
        deadline = time.monotonic() + 10
        while new.zcard("schedule") == 0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        old.rpush("queue:other", "x1", "x2")
        claimed = old.eval(  # an `--only queues` mover's claim; it is then SIGKILLed
            lua.claim_list_lua,
            3,
            *("queue:other", k.MIGRATE_JOURNAL_PREFIX + "killed", k.MIGRATE_SEQUENCE),
            *(10, 1 << 20, "1", "queues", "other"),
        )
        assert claimed[0] == 2
        old.delete("host:1:busy")
        follower.join(10)
        assert not follower.is_alive(), "--follow never ended"
        assert new.lrange("queue:other", 0, -1) == [b"x1", b"x2"]
        assert reports[0].replayed_batches == 1
        assert not list(old.scan_iter(match=k.MIGRATE_JOURNAL_PREFIX + "*"))

    def test_script_flush_between_batches_claims_and_applies_each_batch_once(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """SCRIPT FLUSH on both servers after every batch (a failover, a restart): the pipelined
        claim and the apply get NOSCRIPT, reload, and run once each; nothing lost or doubled."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("retry", {f"r{i}": i for i in range(200)})
        old.lpush("queue:default", *[f"q{i}" for i in range(200)])
        want = zset_items(old, "retry"), old.lrange("queue:default", 0, -1)
        old.config_resetstat()
        new.config_resetstat()
        flushes = 0

        def flush(_label: str, _moved: int, _expected: int) -> None:
            nonlocal flushes
            flushes += 1
            old.script_flush()
            new.script_flush()

        only = frozenset({"retry", "queues"})
        report = run_move(settings_for(old_redis, new_redis), only=only, batch=30, progress=flush)
        assert flushes >= 14
        for server in (old, new):  # the NOSCRIPT paths did run
            assert server.info("errorstats")["errorstat_NOSCRIPT"]["count"] >= 6
        assert report.moved == {"retry": 200, "queue:default": 200}
        assert (zset_items(new, "retry"), new.lrange("queue:default", 0, -1)) == want
        assert leftovers(old) == []

    def test_dry_run_counts_and_writes_nothing(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A dry run reports what would move and leaves both servers byte for byte as they were."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("schedule", {f"s{i}": i for i in range(40)})
        old.lpush("queue:default", "a", "b")
        claim(old, "schedule", "crashed", 5)
        before = snapshot(old), snapshot(new)
        report = run_move(settings_for(old_redis, new_redis), only=ALL, dry_run=True)
        assert report.dry_run
        assert report.moved == {"schedule": 35, "retry": 0, "dead": 0, "queue:default": 2}
        assert report.replayed_batches == 1
        assert (snapshot(old), snapshot(new)) == before


class TestReplay:
    def test_a_claimed_but_unapplied_batch_is_applied_on_the_next_run(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Killed right after its claim: the next run applies the journal, then acks it."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("retry", {f"r{i}": i + 0.5 for i in range(30)})
        want = zset_items(old, "retry")
        claim(old, "retry", "crashed", 10)
        report = run_move(settings_for(old_redis, new_redis))
        assert report.replayed_batches == 1
        assert report.moved == {"retry": 30}
        assert zset_items(new, "retry") == want
        assert journals(old) == []

    def test_an_applied_but_unacked_batch_does_not_come_back(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Killed between apply and ack, while NEW's poller already ran the job: it stays gone."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("schedule", {"ran-on-new": 1})
        _count, items = claim(old, "schedule", "b7", 10)
        apply = new.register_script(lua.apply_lua)
        apply(
            keys=["schedule", k.MIGRATE_APPLIED, "queues"],
            args=["b7", "zset", items, "", time.time(), 3600],
        )
        assert new.zpopmin("schedule") == [(b"ran-on-new", 1.0)]  # NEW's poller took it
        report = run_move(settings_for(old_redis, new_redis))
        assert report.replayed_batches == 1
        assert report.total == 0
        assert new.zcard("schedule") == 0
        assert journals(old) == []

    def test_journals_of_another_namespace_are_replayed_to_their_own_keys(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A journal records its source key, so replay puts items back where they came from."""
        old, new = old_redis.client(), new_redis.client()
        old.lpush("other:queue:low", "x", "y")
        claim(old, "other:queue:low", "j1", 10)
        run_move(settings_for(old_redis, new_redis))
        assert new.lrange("other:queue:low", 0, -1) == [b"y", b"x"]

    def test_a_lists_journals_replay_in_claim_order_whatever_the_movers_clocks(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Movers on hosts whose clocks disagree (or one stepped back) each claim a batch and
        die before applying it: replay still puts the batches on NEW in the order they left OLD."""
        old, new = old_redis.client(), new_redis.client()
        old.lpush("queue:default", *[f"job{i}" for i in range(40)])
        want = old.lrange("queue:default", 0, -1)
        source = SidekiqLayout().sources(old, ["queues"])[0]
        for clock in (4e9, 1e9, 3e9, 2e9):  # far future, then the past, then in between
            crashed = Mover(old, new, batch=10, clock=lambda clock=clock: clock)
            assert crashed._claim(source, "+inf") is not None  # claimed, never applied
        assert len(journals(old)) == 4
        assert Mover(old, new).replay() == 4
        assert new.lrange("queue:default", 0, -1) == want
        assert journals(old) == []

    def test_journals_of_an_older_version_replay_before_numbered_ones(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Journals without `seq` (an older cointoss, killed before the upgrade) were claimed
        first: they go first, by `claimed_at`, then the numbered ones."""
        old, new = old_redis.client(), new_redis.client()
        old.lpush("queue:default", *[f"job{i}" for i in range(40)])
        want = old.lrange("queue:default", 0, -1)
        for batch_id, claimed_at in (("o9", b"200.0"), ("o1", b"300.0")):  # an older mover's
            claim(old, "queue:default", batch_id, 10)
            old.hdel(k.MIGRATE_JOURNAL_PREFIX + batch_id, "seq")
            old.hset(k.MIGRATE_JOURNAL_PREFIX + batch_id, "claimed_at", claimed_at)
        for batch_id in ("a9", "a1"):  # then this version's, stamped "1.0" by `claim`
            claim(old, "queue:default", batch_id, 10)
        assert Mover(old, new).replay() == 4
        assert new.lrange("queue:default", 0, -1) == want


class TestConcurrentMovers:
    def test_parallel_migrate_processes_move_each_member_exactly_once(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Four `cointoss migrate` processes at once, plus leftover journals: one copy of everything."""
        old, new = old_redis.client(), new_redis.client()
        pipe = old.pipeline(transaction=False)
        for i in range(6000):
            pipe.zadd("schedule", {f"s{i}": i})
            pipe.zadd("retry", {f"r{i}": -i})
        pipe.rpush("queue:default", *[f"q{i}" for i in range(3000)])
        pipe.execute()
        want = {key: zset_items(old, key) for key in ("schedule", "retry")}
        want_list = old.lrange("queue:default", 0, -1)
        for n in range(6):  # crashed movers left these behind; every new mover replays them
            claim(old, "queue:default", f"crash{n}", 7)
        env = child_env(
            {"MIGRATION_OLD_REDIS_URL": old_redis.url, "MIGRATION_NEW_REDIS_URL": new_redis.url}
        )
        argv = cointoss_argv(
            "migrate", "--only", "schedule,retry,queues", "--batch", "37", "--json"
        )
        procs = [
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            for _ in range(4)
        ]
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
        assert {key: zset_items(new, key) for key in ("schedule", "retry")} == want
        moved = new.lrange("queue:default", 0, -1)
        assert sorted(moved) == sorted(want_list)
        assert leftovers(old) == []
        totals = sum(json.loads(out)["total"] for out in outputs)
        assert totals == 15000

    def test_two_movers_in_threads_share_the_work(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Movers in one process (as supervise runs them) never both win a member."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("schedule", {f"s{i}": i for i in range(5000)})
        reports = []
        settings = settings_for(old_redis, new_redis)

        def work() -> None:
            reports.append(run_move(settings, batch=25))

        threads = [threading.Thread(target=work) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sum(r.total for r in reports) == 5000
        assert new.zcard("schedule") == 5000

    def test_writes_to_new_during_the_move_lose_and_double_nothing(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A producer writing NEW's schedule throughout (so fast-path EXECs abort) changes nothing."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("schedule", {f"old-{i}": i for i in range(20000)})
        stop = threading.Event()
        written: list[str] = []

        def produce() -> None:
            writer = new_redis.client()
            while not stop.is_set():
                member = f"new-{len(written)}"
                writer.zadd("schedule", {member: 1e9 + len(written)})
                written.append(member)

        producer = threading.Thread(target=produce)
        producer.start()
        try:
            report = run_move(settings_for(old_redis, new_redis), batch=50)
        finally:
            stop.set()
            producer.join(10)
        assert report.total == 20000 and old.zcard("schedule") == 0
        members = {m.decode() for m in new.zrange("schedule", 0, -1)}
        assert members == {f"old-{i}" for i in range(20000)} | set(written)
        assert new.zscore("schedule", "old-19999") == 19999.0


class TestBadInput:
    def test_new_unreachable_claims_nothing(
        self, old_redis: RedisServer, redis_factory: type[RedisServer]
    ) -> None:
        """NEW down: RedisUnavailableError (69) before anything leaves OLD."""
        gone = redis_factory().start()
        url = gone.url
        gone.stop()
        old = old_redis.client()
        old.zadd("schedule", {"job": 1})
        before = snapshot(old)
        with pytest.raises(RedisUnavailableError, match=r"NEW Redis at 127\.0\.0\.1") as caught:
            run_move(Settings(old_redis_url=old_redis.url, new_redis_url=url))
        assert caught.value.exit_code == 69
        assert snapshot(old) == before

    def test_the_same_server_and_database_is_refused(self, old_redis: RedisServer) -> None:
        """`localhost` and `127.0.0.1` are one server: refused with ConfigError, nothing touched."""
        old_redis.client().zadd("schedule", {"job": 1})
        aliased = old_redis.url.replace("127.0.0.1", "localhost")
        with pytest.raises(ConfigError, match="same Redis server and database"):
            run_move(Settings(old_redis_url=old_redis.url, new_redis_url=aliased))
        assert old_redis.client().zcard("schedule") == 1

    def test_another_database_on_the_same_server_is_allowed(self, old_redis: RedisServer) -> None:
        """Databases are separate keyspaces (Sidekiq's advice instead of namespaces)."""
        old_redis.client().zadd("schedule", {"job": 1})
        other_db = old_redis.url.replace("/0", "/3")
        report = run_move(Settings(old_redis_url=old_redis.url, new_redis_url=other_db))
        assert report.total == 1
        assert redis.Redis.from_url(other_db).zrange("schedule", 0, -1) == [b"job"]

    @pytest.mark.parametrize(
        ("options", "match"),
        [
            ({"only": frozenset({"schedule", "bogus"})}, "--only"),
            ({"batch": 0}, "--batch"),
            ({"due_within_s": -1.0}, "--due-within"),
            ({"wait_replicas": -2}, "--wait-replicas"),
        ],
    )
    def test_bad_options_are_usage_errors(
        self, old_redis: RedisServer, new_redis: RedisServer, options: dict[str, Any], match: str
    ) -> None:
        """Out-of-range options fail with UsageError (64) before any connection."""
        with pytest.raises(UsageError, match=match):
            run_move(settings_for(old_redis, new_redis), **options)

    def test_a_key_of_the_wrong_type_is_skipped_and_the_rest_moves(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """`retry` as a string on OLD, `dead` as a list on NEW: both left alone, reported."""
        old, new = old_redis.client(), new_redis.client()
        old.set("retry", "not a zset")
        old.zadd("dead", {"corpse": 1})
        new.rpush("dead", "weird")
        old.zadd("schedule", {"job": 1})
        report = run_move(settings_for(old_redis, new_redis), only=ALL)
        assert report.skipped == ("dead", "retry")
        assert report.moved == {"schedule": 1}
        assert old.get("retry") == b"not a zset"
        assert old.zrange("dead", 0, -1) == [b"corpse"]

    def test_megabyte_members_and_non_json_move_intact(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """1 MB members and raw non-UTF-8 bytes move as they are, a few per claim."""
        old, new = old_redis.client(), new_redis.client()
        big = {bytes([i]) * (1 << 20): i for i in range(12)}
        big[b"\x80\x81 not json"] = 99.5
        old.zadd("dead", big)
        old.rpush("queue:big", *[b"L" * (1 << 20), b"\xff\xfe"])
        want = zset_items(old, "dead"), old.lrange("queue:big", 0, -1)
        report = run_move(settings_for(old_redis, new_redis), only=ALL, batch=1000)
        assert report.moved == {"dead": 13, "queue:big": 2}
        assert (zset_items(new, "dead"), new.lrange("queue:big", 0, -1)) == want

    def test_an_empty_old_moves_nothing(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Nothing to do is a normal, successful run."""
        report = run_move(settings_for(old_redis, new_redis), only=ALL)
        assert report.total == 0
        assert report.skipped == ()


class TestReplicas:
    def test_wait_replicas_acks_once_a_real_replica_has_the_batch(
        self, old_redis: RedisServer, redis_factory: type[RedisServer]
    ) -> None:
        """With a replica attached to NEW, --wait-replicas 1 moves everything."""
        primary = redis_factory().start()
        replica = redis_factory(extra_args=(f"replicaof 127.0.0.1 {primary.port}",)).start()
        deadline = time.monotonic() + 20
        while primary.client().info("replication")["connected_slaves"] < 1:
            assert time.monotonic() < deadline, "replica never connected"
            time.sleep(0.1)
        old_redis.client().zadd("schedule", {f"j{i}": i for i in range(100)})
        report = run_move(
            Settings(old_redis_url=old_redis.url, new_redis_url=primary.url),
            wait_replicas=1,
            batch=30,
        )
        assert report.total == 100
        deadline = time.monotonic() + 10
        while replica.client().zcard("schedule") < 100:
            assert time.monotonic() < deadline
            time.sleep(0.05)

    def test_missing_replicas_keep_the_batch_journalled(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """No replica confirms: 69, the batch stays in OLD's journal, and a later run finishes."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("schedule", {f"j{i}": i for i in range(10)})
        with pytest.raises(RedisUnavailableError, match="0 of 1 replicas"):
            run_move(settings_for(old_redis, new_redis), wait_replicas=1)
        assert len(journals(old)) == 1
        report = run_move(settings_for(old_redis, new_redis))
        assert report.replayed_batches == 1
        assert new.zcard("schedule") == 10
        assert report.total == 0  # the first run's apply already landed; the marker says so
        assert journals(old) == []

    def test_a_batch_another_mover_applied_is_acked_only_once_a_replica_has_it(
        self,
        old_redis: RedisServer,
        redis_factory: type[RedisServer],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Mover B applied the batch but its WAIT failed; live mover A then finds the marker and
        must not ack on a WAIT that only covers A's own earlier writes (Redis 7 moves a client's
        WAIT offset only on writes that propagate): the replica still lacks the batch."""
        use_redis_7_2(monkeypatch)
        monkeypatch.setattr(mover_module, "WAIT_TIMEOUT_MS", 300)
        primary = redis_factory().start()
        replica = redis_factory(extra_args=(f"replicaof 127.0.0.1 {primary.port}",)).start()
        new, old = primary.client(), old_redis.client()
        old.zadd("schedule", {f"j{i}": i for i in range(20)})
        wait_in_sync(new)
        claim(old, "schedule", "a0", 10)
        live = Mover(old_redis.client(), primary.client(), wait_replicas=1)  # A
        assert live.replay() == 1  # A applied a0 and its replica has it
        wait_in_sync(new)
        claim(old, "schedule", "b1", 10)
        assert replica.pid is not None
        os.kill(replica.pid, signal.SIGSTOP)  # online for the primary, but acks nothing more
        try:
            with pytest.raises(RedisUnavailableError, match="0 of 1 replicas"):
                run_move(  # B replays b1: applied on the primary, WAIT fails, journal kept
                    Settings(old_redis_url=old_redis.url, new_redis_url=primary.url),
                    wait_replicas=1,
                )
            assert new.zcard("schedule") == 20
            with pytest.raises(RedisUnavailableError, match="0 of 1 replicas"):
                live.replay()  # A finds b1's marker: its WAIT must still cover b1
            assert journals(old) == [(k.MIGRATE_JOURNAL_PREFIX + "b1").encode()]
        finally:
            os.kill(replica.pid, signal.SIGCONT)


def wait_in_sync(primary: redis.Redis) -> None:
    """Until a replica is online and has acknowledged everything the primary wrote."""
    deadline = time.monotonic() + 30
    while True:
        info = primary.info("replication")
        found = info.get("slave0")
        if found and found["state"] == "online" and found["offset"] >= info["master_repl_offset"]:
            return
        assert time.monotonic() < deadline, "replica never caught up"
        time.sleep(0.05)


def use_redis_7_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Puts a redis-server 7.2+ first on PATH for servers this test starts, or skips: before
    7.2, every command (reads too) moves a client's WAIT offset, which hides the case. Under
    $COINTOSS_REDIS_SERVER (the CI matrix) that build is the one every server runs."""
    chosen = os.environ.get(SERVER_VARIABLE)
    if chosen:
        said = subprocess.run([chosen, "--version"], capture_output=True, text=True).stdout
        found = re.search(r"v=(\d+)\.(\d+)\.", said)
        if found and (int(found.group(1)), int(found.group(2))) >= (7, 2):
            return
        pytest.skip(f"needs a server 7.2 or later; {SERVER_VARIABLE} is older")
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        binary = shutil.which("redis-server", path=directory or ".")
        if binary is None:
            continue
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        found = re.search(r"v=(\d+)\.(\d+)\.", version)
        if found and (int(found.group(1)), int(found.group(2))) >= (7, 2):
            monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
            return
    pytest.skip("needs redis-server 7.2 or later on PATH")
