"""`cointoss status`: the verdict table, and the real command against real servers."""

from __future__ import annotations

import json
import signal
import time

import pytest

from supervisor import constants as k
from supervisor.demo.embedded_redis import RedisServer
from supervisor.layouts import plain as lua
from supervisor.layouts.base import Backlog
from supervisor.migration.status import DRAINED, DRAINING, ONLY_SCHEDULED, RETIRABLE, verdict
from tests.conftest import heartbeat, run_cointoss, start_cointoss


def urls(old: RedisServer | str, new: RedisServer | str) -> dict[str, str]:
    return {
        "MIGRATION_OLD_REDIS_URL": old if isinstance(old, str) else old.url,
        "MIGRATION_NEW_REDIS_URL": new if isinstance(new, str) else new.url,
    }


def status_json(old: RedisServer, new: RedisServer, **env: str) -> tuple[int, dict[str, object]]:
    result = run_cointoss(["status", "--json"], {**urls(old, new), **env})
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def cluster_node(factory: type[RedisServer]) -> RedisServer:
    """A cluster-mode server; its bus listens on port+10000, so the port must leave room."""
    for _attempt in range(20):
        server = factory(extra_args=("cluster-enabled yes",)).start()
        if server.port <= 55535 and server.client().ping():
            return server
        server.stop()
    raise AssertionError("no port low enough for a cluster bus")


class TestVerdict:
    @pytest.mark.parametrize(
        ("backlog", "expected"),
        [
            (Backlog(queues={"default": 3}), DRAINING),
            (Backlog(busy=1, live_processes=1), DRAINING),
            (Backlog(waiting={"schedule": 2}, live_processes=1), ONLY_SCHEDULED),
            (Backlog(waiting={"retry": 2}), ONLY_SCHEDULED),
            (Backlog(waiting={"schedule": 1}, complete=False), DRAINING),
            (Backlog(live_processes=2, terminal={"dead": 9}), DRAINED),
            (Backlog(terminal={"dead": 9}), RETIRABLE),
            (Backlog(), RETIRABLE),
            (Backlog(wrong_type=("schedule",), complete=False), DRAINING),
            (Backlog(moving=5, moving_batches=1), ONLY_SCHEDULED),  # a killed mover's journal
            (Backlog(moving=5, moving_batches=1, queues={"default": 1}), DRAINING),
        ],
    )
    def test_verdict_follows_design(self, backlog: Backlog, expected: str) -> None:
        """Queues or busy jobs: draining; only sets: migrate; empty: drained, retirable when idle."""
        assert verdict(backlog) == expected


class TestStatusCommand:
    def test_json_shows_both_sides_and_exits_1_while_draining(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Queue lengths and ages, sets, live consumers with busy and quiet; exit 1 while draining."""
        old = old_redis.client()
        now = time.time()
        old.lpush("queue:default", json.dumps({"jid": "b", "enqueued_at": now - 5}))
        old.lpush("queue:default", json.dumps({"jid": "a", "enqueued_at": now}))
        old.rpush("queue:orphan", "x")  # not in `queues`: found by SCAN
        old.sadd("queues", "default")
        old.zadd("schedule", {json.dumps({"created_at": now - 60}): now + 120})
        old.zadd("dead", {"not json": now - 3600})
        old.rpush("queue:sq|host:1:abc|default", "in-flight")
        heartbeat(old, "host:1:abc", busy=2, quiet=True)
        old.sadd("processes", "host:2:gone")  # heartbeat expired: not live
        new_redis.client().lpush("queue:default", "fresh")
        code, doc = status_json(old_redis, new_redis)
        assert code == 1
        assert doc["verdict"] == DRAINING
        side = doc["old"]
        assert side["queues"]["default"]["size"] == 2
        assert 4 < side["queues"]["default"]["oldest_age_s"] < 60
        assert side["queues"]["orphan"]["size"] == 1
        assert side["private_lists"] == {
            "sq|host:1:abc|default": {"size": 1, "oldest_age_s": None, "next_due_in_s": None}
        }
        assert side["schedule"]["size"] == 1
        assert 100 < side["schedule"]["next_due_in_s"] <= 120
        assert 3500 < side["dead"]["oldest_age_s"] < 3700
        assert side["processes"] == [{"identity": "host:1:abc", "busy": 2, "quiet": True}]
        assert (side["live_processes"], side["busy"]) == (1, 2)
        assert doc["new"]["queues"]["default"]["size"] == 1

    def test_verdict_moves_from_migrate_to_drained_to_retirable(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Only sets left says run migrate; after it, drained (exit 0); without consumers, retirable."""
        old = old_redis.client()
        old.zadd("retry", {"r": 1})
        heartbeat(old, "host:1:abc", busy=0)
        code, doc = status_json(old_redis, new_redis)
        assert (code, doc["verdict"]) == (1, ONLY_SCHEDULED)
        assert run_cointoss(["migrate"], urls(old_redis, new_redis)).returncode == 0
        code, doc = status_json(old_redis, new_redis)
        assert (code, doc["verdict"], doc["drained"]) == (0, DRAINED, True)
        old.delete("host:1:abc")
        code, doc = status_json(old_redis, new_redis)
        assert (code, doc["verdict"]) == (0, RETIRABLE)

    def test_a_killed_movers_journal_keeps_old_from_being_drained(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Jobs claimed by a mover that died before applying them are on neither side's sets:
        status must not call OLD drained or retirable until `cointoss migrate` replays them."""
        old = old_redis.client()
        old.zadd("schedule", {f"job-{i}": 1000 + i for i in range(3)})
        claimed = old.eval(  # the claim a mover makes first; it is then SIGKILLed
            lua.claim_zset_lua,
            3,
            *("schedule", k.MIGRATE_JOURNAL_PREFIX + "x", k.MIGRATE_SEQUENCE),
            *(10, "+inf", 1 << 20, "1"),
        )
        assert claimed[0] == 3 and old.zcard("schedule") == 0
        code, doc = status_json(old_redis, new_redis)
        assert (code, doc["verdict"], doc["drained"]) == (1, ONLY_SCHEDULED, False)
        assert (doc["old"]["moving"], doc["old"]["moving_batches"]) == (3, 1)
        assert any("3 jobs in 1 journals" in w for w in doc["warnings"])
        assert run_cointoss(["migrate"], urls(old_redis, new_redis)).returncode == 0
        code, doc = status_json(old_redis, new_redis)
        assert (code, doc["verdict"], doc["old"]["moving_batches"]) == (0, RETIRABLE, 0)
        assert new_redis.client().zcard("schedule") == 3

    def test_table_on_stdout_names_both_servers_and_the_verdict(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Without --json a table shows OLD and NEW side by side, then the verdict."""
        old_redis.client().zadd("schedule", {"s": 1})
        result = run_cointoss(["status"], urls(old_redis, new_redis))
        assert result.returncode == 1
        assert f"OLD 127.0.0.1:{old_redis.port}" in result.stdout
        assert f"NEW 127.0.0.1:{new_redis.port}" in result.stdout
        assert "verdict: only scheduled/retry left: run cointoss migrate" in result.stdout

    def test_the_namespace_prefix_is_honoured(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """With MIGRATION_KEY_PREFIX only namespaced keys count."""
        old = old_redis.client()
        old.lpush("myapp:queue:default", "job")
        old.lpush("queue:unrelated", "job")
        heartbeat(old, "h:1:x", busy=1, prefix="myapp:")
        _code, doc = status_json(old_redis, new_redis, MIGRATION_KEY_PREFIX="myapp:")
        assert list(doc["old"]["queues"]) == ["default"]
        assert doc["old"]["busy"] == 1

    def test_eviction_policy_and_cluster_mode_are_warned_about(
        self, redis_factory: type[RedisServer], new_redis: RedisServer
    ) -> None:
        """allkeys-lru may evict jobs and cluster mode breaks Sidekiq: both get a warning."""
        lru = redis_factory(extra_args=("maxmemory-policy allkeys-lru",)).start()
        cluster = cluster_node(redis_factory)
        _code, doc = status_json(lru, cluster)
        assert any("OLD has maxmemory-policy allkeys-lru" in w for w in doc["warnings"])
        assert any("NEW runs in cluster mode" in w for w in doc["warnings"])
        assert doc["new"]["cluster"] is True

    def test_a_key_of_the_wrong_type_is_warned_and_never_drained(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """`retry` holding a string: a warning, and OLD is not called drained past it."""
        old_redis.client().set("retry", "junk")
        code, doc = status_json(old_redis, new_redis)
        assert code == 1
        assert doc["old"]["wrong_type"] == ["retry"]
        assert any("'retry' holds another type" in w for w in doc["warnings"])

    def test_watch_refreshes_until_interrupted(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """--watch --json prints one JSON line per look until Ctrl-C (exit 130)."""
        proc = start_cointoss(["status", "--json", "--watch", "0.2"], urls(old_redis, new_redis))
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        old_redis.client().zadd("schedule", {"s": 1})
        deadline = time.monotonic() + 30
        while True:
            look = json.loads(proc.stdout.readline())
            if look["old"]["schedule"]["size"] == 1:
                break
            assert time.monotonic() < deadline
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
        assert first["verdict"] == RETIRABLE
        assert look["verdict"] == ONLY_SCHEDULED

    def test_watch_without_a_number_refreshes_every_two_seconds(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """`--watch` alone is accepted (the runbook writes it so) and looks again, every 2 s."""
        proc = start_cointoss(["status", "--json", "--watch"], urls(old_redis, new_redis))
        assert proc.stdout is not None
        looks = [json.loads(proc.stdout.readline()) for _ in range(2)]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
        assert [look["verdict"] for look in looks] == [RETIRABLE, RETIRABLE]

    def test_unreachable_old_exits_69(
        self, new_redis: RedisServer, redis_factory: type[RedisServer]
    ) -> None:
        """OLD down: one line naming OLD, exit 69 (a status that cannot see OLD must not guess)."""
        gone = redis_factory().start()
        url = gone.url
        gone.stop()
        result = run_cointoss(["status"], urls(url, new_redis))
        assert result.returncode == 69
        assert result.stderr.startswith("cointoss: OLD Redis at 127.0.0.1")

    def test_bad_watch_interval_exits_64(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """--watch needs a positive number of seconds."""
        result = run_cointoss(["status", "--watch", "0"], urls(old_redis, new_redis))
        assert result.returncode == 64
