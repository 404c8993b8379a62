"""The RQ layout against real RQ 3.0: its drain definition, status, the mover, refusals, crashes."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import redis

from supervisor import constants as k
from supervisor.demo.embedded_redis import RedisServer
from supervisor.layouts.rq.layout import RqLayout
from tests.conftest import child_env, cointoss_argv, run_cointoss
from tests.queue_systems import kill_migrate_mid_run, produce, queue_env, queue_venv, term, wait_for

RQ = {"MIGRATION_QUEUE_LAYOUT": "rq"}
KILLS = 20


def urls(old: RedisServer, new: RedisServer) -> dict[str, str]:
    return {**RQ, "MIGRATION_OLD_REDIS_URL": old.url, "MIGRATION_NEW_REDIS_URL": new.url}


def jobs_state(client: redis.Redis) -> dict[str, object]:
    """Every id in order or with its exact score, and every job hash with its PTTL sign."""
    ids = client.lrange("rq:queue:default", 0, -1)
    scheduled = client.zrange("rq:scheduled:default", 0, -1, withscores=True, score_cast_func=bytes)
    hashes = {
        job_id: (client.hgetall(b"rq:job:" + job_id), client.pttl(b"rq:job:" + job_id) > 0)
        for job_id in ids + [member for member, _ in scheduled]
    }
    return {"queue": ids, "scheduled": scheduled, "hashes": hashes}


def start_worker(url: str, name: str, *extra: str) -> subprocess.Popen[bytes]:
    rq = str(queue_venv() / "rq")
    return subprocess.Popen(
        [rq, "worker", "-n", name, "--url", url, "default", *extra],
        env=queue_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class TestDrainDefinition:
    def test_queued_scheduled_and_running_jobs_each_keep_rq_from_drained(
        self, old_redis: RedisServer
    ) -> None:
        """Queued, then scheduled, then a running job: each alone is 'not drained'; empty is."""
        layout, client = RqLayout(), old_redis.client()
        assert layout.read_backlog(client).provably_drained
        produce("produce_rq.py", old_redis.url, "queued", 0, 2)
        backlog = layout.read_backlog(client)
        assert (backlog.queues, backlog.drained) == ({"default": 2}, False)
        client.delete("rq:queue:default")
        produce("produce_rq.py", old_redis.url, "later", 0, 1, "3600")
        backlog = layout.read_backlog(client)
        assert (backlog.waiting, backlog.drained) == ({"scheduled:default": 1}, False)
        client.delete("rq:scheduled:default")
        client.zadd("rq:wip:default", {"abc:exec1": time.time() + 90})  # as Execution.create
        assert not layout.read_backlog(client).drained
        client.zadd("rq:wip:default", {"abc:exec1": time.time() - 5})  # abandoned: RQ fails it
        assert layout.read_backlog(client).provably_drained

    def test_a_busy_worker_blocks_drained_and_a_live_idle_one_blocks_retirable(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A real worker running a 3 s job: busy; once done: drained, not retirable."""
        client = old_redis.client()
        worker = start_worker(old_redis.url, "w-busy")
        try:
            wait_for(lambda: client.exists("rq:worker:w-busy"), what="the worker's hash")
            subprocess.run(
                [
                    str(queue_venv() / "python"),
                    "-c",
                    "import redis, rq, rqjobs; rq.Queue('default', connection=redis.Redis.from_url("
                    f"'{old_redis.url}')).enqueue(rqjobs.record, 'slow', 3)",
                ],
                env=queue_env(),
                check=True,
            )
            wait_for(lambda: RqLayout().read_backlog(client).busy == 1, what="busy")
            result = run_cointoss(["status", "--json"], urls(old_redis, new_redis))
            doc = json.loads(result.stdout)
            assert (result.returncode, doc["verdict"], doc["old"]["busy"]) == (1, "draining", 1)
            wait_for(lambda: client.hget("ledger", "slow") == b"1", what="the job to finish")
            wait_for(lambda: RqLayout().read_backlog(client).drained, what="drained")
            doc = json.loads(run_cointoss(["status", "--json"], urls(old_redis, new_redis)).stdout)
            assert doc["verdict"] == "drained"
            assert [p["identity"] for p in doc["old"]["processes"]] == ["w-busy"]
        finally:
            term(worker, 30)
        doc = json.loads(run_cointoss(["status", "--json"], urls(old_redis, new_redis)).stdout)
        assert doc["verdict"] == "retirable"


class TestStatus:
    def test_status_shows_queues_scheduled_and_warns_of_scheduled_jobs_nobody_promotes(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        produce("produce_rq.py", old_redis.url, "queued", 0, 3)
        produce("produce_rq.py", old_redis.url, "later", 0, 2, "600")
        result = run_cointoss(["status", "--json"], urls(old_redis, new_redis))
        doc = json.loads(result.stdout)
        assert (result.returncode, doc["layout"], doc["verdict"]) == (1, "rq", "draining")
        assert doc["old"]["queues"]["default"]["size"] == 3
        assert 0 <= doc["old"]["queues"]["default"]["oldest_age_s"] < 120
        assert doc["old"]["scheduled:default"]["size"] == 2
        assert 500 < doc["old"]["scheduled:default"]["next_due_in_s"] <= 600
        assert any("no RQ scheduler holds rq:scheduler-lock:default" in w for w in doc["warnings"])
        table = run_cointoss(["status"], urls(old_redis, new_redis)).stdout
        assert "scheduled:default" in table and "queue:default" in table

    def test_cron_and_a_scheduler_on_new_are_the_recipe_not_a_warning(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Cron and a scheduler holding its lock are warned about on OLD only: on NEW they
        are where the recipe puts them."""
        produce("produce_rq.py", new_redis.url, "later", 0, 2, "600")
        keys = RqLayout().keys
        new = new_redis.client()
        new.sadd(keys.cron_schedulers, "cron-1")
        new.set(keys.scheduler_lock("default"), "a-live-scheduler", ex=60)
        doc = json.loads(run_cointoss(["status", "--json"], urls(old_redis, new_redis)).stdout)
        assert doc["warnings"] == []
        produce("produce_rq.py", old_redis.url, "later", 0, 2, "600")
        old = old_redis.client()
        old.sadd(keys.cron_schedulers, "cron-1")
        old.set(keys.scheduler_lock("default"), "a-live-scheduler", ex=60)
        doc = json.loads(run_cointoss(["status", "--json"], urls(old_redis, new_redis)).stdout)
        assert [w.split(" ", 2)[:2] for w in doc["warnings"]] == [["OLD:", "2"], ["OLD:", "RQ"]]


class TestMover:
    def test_queued_and_scheduled_jobs_move_with_their_hashes_bytes_scores_and_order(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Ids in order with their hashes (pickle bytes intact), scheduled at the same scores;
        then a real worker on NEW runs every one of them exactly once."""
        produce("produce_rq.py", old_redis.url, "queued", 0, 40)
        produce("produce_rq.py", old_redis.url, "later", 0, 5, "1")
        old, new = old_redis.client(), new_redis.client()
        old.expire(b"rq:job:" + old.lindex("rq:queue:default", 0), 3600)  # as Job(ttl=3600)
        want = jobs_state(old)
        result = run_cointoss(
            ["migrate", "--only", "queues,scheduled", "--batch", "7", "--json"],
            urls(old_redis, new_redis),
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["moved"] == {"queue:default": 40, "scheduled:default": 5}
        assert jobs_state(new) == want
        assert old.keys("rq:job:*") == [] and old.llen("rq:queue:default") == 0
        assert new.smembers("rq:queues") == {b"rq:queue:default"}
        worker = start_worker(new_redis.url, "w-new", "--with-scheduler")
        try:
            wait_for(lambda: len(new.hgetall("ledger")) == 45, what="45 jobs run on NEW")
        finally:
            term(worker, 30)
        assert set(new.hgetall("ledger").values()) == {b"1"}

    def test_scheduled_jobs_due_soon_stay_while_olds_scheduler_holds_the_lock(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """RQ's scheduler does not claim: under its lock only jobs due past the margin move,
        and migrate says why the rest stays."""
        produce("produce_rq.py", old_redis.url, "later", 0, 2, "5")
        produce("produce_rq.py", old_redis.url, "later", 2, 3, "3600")
        old = old_redis.client()
        old.set("rq:scheduler-lock:default", "a-live-scheduler", ex=60)
        doc = json.loads(run_cointoss(["status", "--json"], urls(old_redis, new_redis)).stdout)
        assert any(
            "held by the RQ scheduler that owns rq:scheduler-lock:default (a-live-scheduler)" in w
            for w in doc["warnings"]
        )
        result = run_cointoss(["migrate", "--json"], urls(old_redis, new_redis))
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["moved"] == {"scheduled:default": 3}
        assert any("OLD's RQ scheduler holds the lock" in line for line in doc["refused"])
        assert old.zcard("rq:scheduled:default") == 2
        assert old.get("rq:scheduler-lock:default") == b"a-live-scheduler"
        old.delete("rq:scheduler-lock:default")  # the scheduler died: everything may move
        result = run_cointoss(["migrate", "--json"], urls(old_redis, new_redis))
        assert json.loads(result.stdout)["moved"] == {"scheduled:default": 2}
        assert new_redis.client().zcard("rq:scheduled:default") == 5

    def test_a_job_id_already_on_new_stops_the_batch_and_loses_nothing(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A reused custom id: exit 65 naming the key, the batch stays journalled on OLD."""
        produce("produce_rq.py", old_redis.url, "queued", 0, 3)
        old, new = old_redis.client(), new_redis.client()
        taken = old.lindex("rq:queue:default", 1)
        new.hset(b"rq:job:" + taken, "status", "finished")
        result = run_cointoss(["migrate", "--only", "queues"], urls(old_redis, new_redis))
        assert result.returncode == 65
        assert "already exists on NEW" in result.stderr and "Traceback" not in result.stderr
        assert new.llen("rq:queue:default") == 0
        assert len(list(old.scan_iter(match=k.MIGRATE_JOURNAL_PREFIX + "*"))) == 1
        new.delete(b"rq:job:" + taken)
        assert (
            run_cointoss(["migrate", "--only", "queues"], urls(old_redis, new_redis)).returncode
            == 0
        )
        assert new.llen("rq:queue:default") == 3

    def test_failed_jobs_move_on_request_with_their_hashes_and_scores(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Jobs a real worker failed: reported (never blocking), moved only with --only failed."""
        produce("produce_rq.py", old_redis.url, "broken", 0, 3)
        old, new = old_redis.client(), new_redis.client()
        burst = subprocess.run(
            [str(queue_venv() / "rq"), "worker", "--burst", "--url", old_redis.url, "default"],
            env=queue_env(),
            capture_output=True,
            timeout=120,
        )
        assert old.zcard("rq:failed:default") == 3, burst.stderr
        assert RqLayout().read_backlog(old).provably_drained  # failed never blocks
        want = old.zrange("rq:failed:default", 0, -1, withscores=True, score_cast_func=bytes)
        hashes = {job_id: old.hgetall(b"rq:job:" + job_id) for job_id, _ in want}
        assert run_cointoss(["migrate"], urls(old_redis, new_redis)).returncode == 0
        assert old.zcard("rq:failed:default") == 3  # not by default
        result = run_cointoss(["migrate", "--only", "failed", "--json"], urls(old_redis, new_redis))
        assert json.loads(result.stdout)["moved"] == {"failed:default": 3}
        assert (
            new.zrange("rq:failed:default", 0, -1, withscores=True, score_cast_func=bytes) == want
        )
        assert {job_id: new.hgetall(b"rq:job:" + job_id) for job_id, _ in want} == hashes
        assert all(new.pttl(b"rq:job:" + job_id) > 0 for job_id, _ in want)  # failure_ttl kept

    def test_in_flight_and_deferred_jobs_are_refused_with_a_reason(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        old = old_redis.client()
        old.sadd("rq:queues", "rq:queue:default")
        old.rpush("rq:queue:default:intermediate", "popped")
        old.zadd("rq:deferred:default", {"child": time.time()})
        result = run_cointoss(["migrate", "--only", "queues"], urls(old_redis, new_redis))
        assert result.returncode == 0, result.stderr
        assert "not moved: deferred:default (1): waiting for parent jobs" in result.stdout
        assert "not moved: intermediate:default (1): in flight" in result.stdout
        assert old.llen("rq:queue:default:intermediate") == 1


class TestSecrets:
    def test_status_and_migrate_never_print_the_password(self, redis_factory: type) -> None:
        """Password-protected servers, a refused batch and warnings: the password appears in no
        output of status or migrate."""
        secret = "rq-s3cret-7f3a9"
        with (
            redis_factory(password=secret) as old_redis,
            redis_factory(password=secret) as new_redis,
        ):
            produce("produce_rq.py", old_redis.url, "queued", 0, 2)
            produce("produce_rq.py", old_redis.url, "later", 0, 1, 600)
            taken = old_redis.client().lindex("rq:queue:default", 0)
            new_redis.client().hset(b"rq:job:" + taken, "status", "finished")
            outputs = [
                run_cointoss(["status"], urls(old_redis, new_redis)),
                run_cointoss(["status", "--json"], urls(old_redis, new_redis)),
                run_cointoss(["migrate", "--only", "queues,scheduled"], urls(old_redis, new_redis)),
            ]
        assert outputs[2].returncode == 65
        for result in outputs:
            assert secret not in result.stdout + result.stderr


class TestCrashSafety:
    def test_sigkilled_migrate_moves_every_job_exactly_once_with_its_hash(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """20 SIGKILLs at random moments, then a final run: NEW holds exactly OLD's ids, order,
        scores and hashes; OLD holds no job and no journal."""
        produce("produce_rq.py", old_redis.url, "queued", 0, 1500)
        produce("produce_rq.py", old_redis.url, "later", 0, 300, "3600")
        old, new = old_redis.client(), new_redis.client()
        want = jobs_state(old)
        env = child_env(urls(old_redis, new_redis))
        argv = cointoss_argv("migrate", "--only", "queues,scheduled", "--batch", "10")

        def left() -> int:
            return old.llen("rq:queue:default") + old.zcard("rq:scheduled:default")

        torn = kill_migrate_mid_run(argv, env, old, left, seed=14, kills=KILLS)
        result = run_cointoss(["migrate", "--only", "queues,scheduled"], urls(old_redis, new_redis))
        assert result.returncode == 0, result.stderr
        assert jobs_state(new) == want
        assert left() == 0 and old.keys("rq:job:*") == []
        assert list(old.scan_iter(match=k.MIGRATE_JOURNAL_PREFIX + "*")) == []
        assert torn >= 1, "no kill landed between a claim and its ack"


@pytest.fixture(autouse=True)
def _queue_systems_installed() -> None:
    queue_venv()
