"""The Celery layout against real Celery 5.7 / kombu 5.7: drain, status, mover, refusals, crashes."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import redis

from supervisor import constants as k
from supervisor.demo.embedded_redis import RedisServer
from supervisor.layouts.celery.layout import CeleryLayout
from tests.conftest import child_env, cointoss_argv, run_cointoss
from tests.queue_systems import kill_migrate_mid_run, produce, queue_env, queue_venv, term, wait_for

LISTS = ("celery", "celery\x06\x163", "celery\x06\x169")
KILLS = 20


def urls(old: RedisServer, new: RedisServer, **extra: str) -> dict[str, str]:
    return {
        "MIGRATION_QUEUE_LAYOUT": "celery",
        "MIGRATION_OLD_REDIS_URL": old.url,
        "MIGRATION_NEW_REDIS_URL": new.url,
        **extra,
    }


def lists(client: redis.Redis) -> dict[str, list[bytes]]:
    """Every priority list, element bytes in order."""
    return {name: client.lrange(name, 0, -1) for name in LISTS}


def celery_worker(url: str, name: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        celery_argv(name),
        env=queue_env({"CELERY_BROKER_URL": url, **env}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def celery_argv(name: str) -> list[str]:
    return [
        str(queue_venv() / "celery"),
        "-A",
        "celeryapp",
        "worker",
        "-n",
        f"{name}@%h",
        "-P",
        "solo",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]


def status(old: RedisServer, new: RedisServer, **extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = run_cointoss(["status", "--json"], urls(old, new, **extra))
    return result.returncode, json.loads(result.stdout)


class TestDrainAndStatus:
    def test_queued_messages_in_every_priority_list_keep_celery_from_drained(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        produce("produce_celery.py", old_redis.url, "queued", 0, 10)
        backlog = CeleryLayout().read_backlog(old_redis.client())
        assert (backlog.queues, backlog.drained) == ({"celery": 10}, False)
        code, doc = status(old_redis, new_redis)
        assert (code, doc["verdict"], doc["old"]["queues"]["celery"]["size"]) == (1, "draining", 10)

    def test_an_eta_task_held_by_a_worker_is_unacked_and_never_moved(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A countdown task sits in `unacked` while a worker waits for its ETA: not drained,
        and migrate refuses it with a reason; TERM returns it to the queue, which then moves."""
        produce("produce_celery.py", old_redis.url, "later", 0, 1, 600)
        old = old_redis.client()
        worker = celery_worker(old_redis.url, "eta")
        try:
            wait_for(lambda: old.hlen("unacked") == 1, what="the ETA task reserved")
            code, doc = status(old_redis, new_redis)
            assert (code, doc["verdict"], doc["old"]["unacked"]["size"]) == (1, "draining", 1)
            assert any("unacked messages" in w for w in doc["warnings"])
            assert doc["old"]["live_processes"] >= 1  # the worker's BRPOP connection
            moved = run_cointoss(["migrate", "--json"], urls(old_redis, new_redis))
            summary = json.loads(moved.stdout)
            assert summary["total"] == 0
            assert any(line.startswith("unacked (1, 0 past") for line in summary["refused"])
        finally:
            term(worker)
        assert old.hlen("unacked") == 0 and old.llen("celery") == 1  # restored by the shutdown
        moved = run_cointoss(["migrate", "--json"], urls(old_redis, new_redis))
        assert json.loads(moved.stdout)["moved"] == {"celery": 1}
        assert new_redis.client().llen("celery") == 1

    def test_empty_queues_are_not_retirable_with_early_ack_and_are_with_acks_late(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Redis cannot show a running task under early ack: status says so and exits 1."""
        code, doc = status(old_redis, new_redis)
        assert (code, doc["verdict"], doc["drained"]) == (
            1,
            "empty, but running work is invisible in Redis",
            False,
        )
        assert any("celery inspect active" in w for w in doc["warnings"])
        code, doc = status(old_redis, new_redis, MIGRATION_CELERY_ACKS_LATE="true")
        assert (code, doc["verdict"], doc["drained"]) == (0, "retirable", True)

    def test_results_on_the_broker_are_warned_about(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A worker whose result backend is the tossed broker leaves results there."""
        produce("produce_celery.py", old_redis.url, "queued", 0, 2)
        old = old_redis.client()
        worker = celery_worker(old_redis.url, "results", CELERY_RESULT_BACKEND=old_redis.url)
        try:
            wait_for(lambda: old.hlen("ledger") == 2, what="two tasks run")
            wait_for(lambda: list(old.scan_iter(match="celery-task-meta-*")), what="results")
        finally:
            term(worker)
        _code, doc = status(old_redis, new_redis)
        assert any(
            w.startswith("OLD: ") and "keep CELERY_RESULT_BACKEND on NEW" in w
            for w in doc["warnings"]
        )

    def test_the_recipe_results_on_new_is_not_warned_about(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """README's recipe (broker tossed, result backend on NEW) leaves results on NEW: fine."""
        produce("produce_celery.py", old_redis.url, "queued", 0, 2)
        new = new_redis.client()
        worker = celery_worker(old_redis.url, "recipe", CELERY_RESULT_BACKEND=new_redis.url)
        try:
            wait_for(lambda: old_redis.client().hlen("ledger") == 2, what="two tasks run")
            wait_for(lambda: list(new.scan_iter(match="celery-task-meta-*")), what="results")
        finally:
            term(worker)
        _code, doc = status(old_redis, new_redis, MIGRATION_CELERY_ACKS_LATE="true")
        assert doc["warnings"] == []

    def test_beat_and_prefetched_messages_on_new_are_not_warned_about(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """redbeat state and `unacked` are traps on OLD only: on NEW they are the recipe at work."""
        for server in (new_redis, old_redis):
            client = server.client()
            client.set("redbeat::schedule", "x")
            client.hset("unacked", "tag-1", "[]")
            client.zadd("unacked_index", {"tag-1": time.time()})
            _code, doc = status(old_redis, new_redis, MIGRATION_CELERY_ACKS_LATE="true")
            if server is new_redis:
                assert doc["warnings"] == []
        assert [w[:4] for w in doc["warnings"]] == ["OLD:", "OLD:"]


class TestMover:
    def test_every_priority_list_moves_with_exact_bytes_and_order_and_runs_on_new(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        produce("produce_celery.py", old_redis.url, "queued", 0, 60)
        old, new = old_redis.client(), new_redis.client()
        want = lists(old)
        result = run_cointoss(["migrate", "--batch", "7", "--json"], urls(old_redis, new_redis))
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["moved"] == {
            "celery": 32,
            "celery (priority 3)": 8,
            "celery (priority 9)": 20,
        }
        assert lists(new) == want
        assert lists(old) == {name: [] for name in LISTS}
        worker = celery_worker(new_redis.url, "on-new")
        try:
            wait_for(lambda: new.hlen("ledger") == 60, what="60 tasks run on NEW")
        finally:
            term(worker)
        assert set(new.hgetall("ledger").values()) == {b"1"}

    def test_unacked_past_the_visibility_timeout_moves_when_asked_once_its_owner_is_gone(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """An OLD worker reserved a countdown task and was SIGKILLed: nothing on OLD will ever
        restore it. `--only unacked` leaves it while it is younger than the visibility
        timeout, then puts its exact message bytes back on NEW's queue, where it runs once."""
        produce("produce_celery.py", old_redis.url, "later", 0, 1, 3)
        old, new = old_redis.client(), new_redis.client()
        worker = celery_worker(old_redis.url, "doomed")
        try:
            wait_for(lambda: old.hlen("unacked") == 1, what="the ETA task reserved")
        finally:
            worker.kill()
            worker.wait()
        ((_tag, raw),) = old.hgetall("unacked").items()
        env = urls(old_redis, new_redis, MIGRATION_CELERY_VISIBILITY_TIMEOUT="600")
        young = run_cointoss(["migrate", "--only", "unacked", "--json"], env)
        assert json.loads(young.stdout)["total"] == 0
        assert any(
            line.startswith("unacked (1, 0 past") for line in json.loads(young.stdout)["refused"]
        )
        env["MIGRATION_CELERY_VISIBILITY_TIMEOUT"] = "0.5"
        wait_for(lambda: old.zcount("unacked_index", "-inf", time.time() - 1) == 1, what="age")
        moved = run_cointoss(["migrate", "--only", "unacked", "--json"], env)
        assert json.loads(moved.stdout)["moved"] == {"unacked": 1}, moved.stderr
        (message,) = new.lrange("celery", 0, -1)
        assert message in raw and json.loads(message) == json.loads(raw)[0]
        assert old.hlen("unacked") == 0 and old.zcard("unacked_index") == 0
        assert CeleryLayout(acks_late=True).read_backlog(old).provably_drained
        worker = celery_worker(new_redis.url, "rescuer")
        try:
            wait_for(lambda: new.hget("ledger", "clater-0") == b"1", what="the task run on NEW")
        finally:
            term(worker)
        assert old.hget("ledger", "clater-0") is None

    def test_sigkilled_migrate_moves_every_message_exactly_once(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """20 SIGKILLs at random moments, then a final run: NEW's lists equal OLD's original
        lists byte for byte and in order; OLD keeps no message and no journal."""
        produce("produce_celery.py", old_redis.url, "queued", 0, 3000)
        old, new = old_redis.client(), new_redis.client()
        want = lists(old)
        env = child_env(urls(old_redis, new_redis))
        argv = cointoss_argv("migrate", "--batch", "10")

        def left() -> int:
            return sum(old.llen(name) for name in LISTS)

        torn = kill_migrate_mid_run(argv, env, old, left, seed=15, kills=KILLS)
        result = run_cointoss(["migrate"], urls(old_redis, new_redis))
        assert result.returncode == 0, result.stderr
        assert lists(new) == want
        assert left() == 0
        assert list(old.scan_iter(match=k.MIGRATE_JOURNAL_PREFIX + "*")) == []
        assert torn >= 1, "no kill landed between a claim and its ack"


@pytest.fixture(autouse=True)
def _queue_systems_installed() -> None:
    queue_venv()
