"""Real `rq worker` fleets under `cointoss exec` and `cointoss supervise`: every job once."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from supervisor.demo.embedded_redis import RedisServer
from tests import queue_systems
from tests.conftest import run_cointoss
from tests.queue_systems import (
    FAST_DRAIN,
    expected,
    ledger,
    produce,
    queue_venv,
    term,
    wait_for,
)

OLD_SEED, NEW_SEED = "0", "1"  # draws 0.84 and 0.13 against weight 0.5


def fleet_env(old: RedisServer, new: RedisServer, seed: str) -> dict[str, str]:
    return queue_systems.fleet_env(
        "rq", old.url, new.url, seed, {"MIGRATION_EXPORT_AS": "RQ_REDIS_URL"}
    )


def rq_worker(name: str) -> list[str]:
    return [str(queue_venv() / "rq"), "worker", "-n", name, "--with-scheduler", "default"]


def exec_worker(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    return queue_systems.exec_worker(rq_worker(name), env)


class TestExecFleet:
    def test_backlog_on_old_producers_on_new_rolling_restart_and_migrate_run_each_job_once(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """OLD holds queued, scheduled and retrying jobs; producers write to NEW; one worker per
        side; the OLD worker is restarted mid-backlog; `migrate --follow` moves the rest. Every
        job runs exactly once across both Redis servers."""
        jobs = (
            produce("produce_rq.py", old_redis.url, "queued", 0, 300, 0.01)
            + produce("produce_rq.py", old_redis.url, "later", 0, 20, 2)
            + produce("produce_rq.py", old_redis.url, "flaky", 0, 10)
        )
        old, new = old_redis.client(), new_redis.client()
        on_old = exec_worker(fleet_env(old_redis, new_redis, OLD_SEED), "w-old")
        on_new = exec_worker(fleet_env(old_redis, new_redis, NEW_SEED), "w-new")
        try:
            wait_for(lambda: old.exists("rq:worker:w-old") and new.exists("rq:worker:w-new"))
            jobs += produce("produce_rq.py", new_redis.url, "queued", 1000, 100)
            wait_for(lambda: len(old.hgetall("ledger")) >= 30, what="OLD's worker under way")
            term(on_old)  # the rolling restart: OLD still has a backlog, so the coin decides
            on_old = exec_worker(fleet_env(old_redis, new_redis, OLD_SEED), "w-old-2")
            wait_for(lambda: old.exists("rq:worker:w-old-2"), what="the restarted worker")
            moved = run_cointoss(
                ["migrate", "--only", "queues,scheduled", "--follow", "--json"],
                {**fleet_env(old_redis, new_redis, OLD_SEED)},
                timeout=240,
            )
            assert moved.returncode == 0, moved.stderr
            want = expected(jobs)
            wait_for(lambda: set(ledger(old, new)) == want, timeout=120, what="every job run")
        finally:
            term(on_old)
            term(on_new)
        runs = ledger(old, new)
        assert set(runs.values()) == {1}, {jid: n for jid, n in runs.items() if n != 1}
        assert len(runs) == 430
        assert old.hlen("ledger") >= 30 and new.hlen("ledger") >= 100


class TestSupervisedFleet:
    def test_supervise_moves_its_rq_worker_onto_new_once_old_drains(
        self, supervised: Callable[..., Any], old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A worker that starts on OLD drains it; K drained checks later supervise restarts it on
        NEW, where it runs what producers put there; each job once."""
        jobs = produce("produce_rq.py", old_redis.url, "queued", 0, 40, 0.01)
        env = {
            **fleet_env(old_redis, new_redis, OLD_SEED),
            **FAST_DRAIN,
        }
        sup = supervised(rq_worker("w-sup"), env)
        (selected,) = sup.wait_event("redis_selected")
        assert selected["side"] == "old"
        jobs += produce("produce_rq.py", new_redis.url, "queued", 1000, 20)
        (restart,) = sup.wait_event("worker_restarting", timeout=120)
        assert restart["reason"] == "old_drained"
        old, new = old_redis.client(), new_redis.client()
        wait_for(lambda: new.exists("rq:worker:w-sup"), what="the worker on NEW")
        wait_for(lambda: set(ledger(old, new)) == expected(jobs), what="every job run")
        assert set(ledger(old, new).values()) == {1}
        assert old.hlen("ledger") == 40


class TestAutoMigrate:
    def test_supervise_moves_olds_scheduled_jobs_then_converges_onto_new(
        self, supervised: Callable[..., Any], old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Jobs scheduled an hour ahead keep OLD from draining; auto-migrate moves them (past
        the margin, under OLD's live scheduler), then the worker moves to NEW and runs them."""
        produce("produce_rq.py", old_redis.url, "later", 0, 5, 3600)
        env = {
            **fleet_env(old_redis, new_redis, OLD_SEED),
            "MIGRATION_AUTO_MIGRATE": "true",
            **FAST_DRAIN,
        }
        sup = supervised(rq_worker("w-auto"), env)
        (done,) = sup.wait_event("auto_migrate_done", timeout=120)
        assert done["moved"] == {"scheduled:default": 5}
        (restart,) = sup.wait_event("worker_restarting", timeout=120)
        assert restart["reason"] == "old_drained"
        new = new_redis.client()
        assert new.zcard("rq:scheduled:default") == 5
        assert old_redis.client().zcard("rq:scheduled:default") == 0


@pytest.fixture(autouse=True)
def _queue_systems_installed() -> None:
    queue_venv()
