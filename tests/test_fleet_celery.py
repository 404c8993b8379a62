"""Real `celery worker` fleets under `cointoss exec` and `cointoss supervise`: every task once."""

from __future__ import annotations

import json
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
from tests.test_layout_celery import celery_argv

OLD_SEED, NEW_SEED = "0", "1"  # draws 0.84 and 0.13 against weight 0.5


def fleet_env(old: RedisServer, new: RedisServer, seed: str) -> dict[str, str]:
    """The README's recipe: the broker is tossed, results always go to NEW."""
    exports = {
        "MIGRATION_EXPORT_AS": "CELERY_BROKER_URL",
        "MIGRATION_PRODUCER_EXPORT_AS": "CELERY_RESULT_BACKEND",
    }
    return queue_systems.fleet_env("celery", old.url, new.url, seed, exports)


def exec_worker(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    return queue_systems.exec_worker(celery_argv(name), env)


class TestExecFleet:
    def test_backlog_on_old_producers_on_new_rolling_restart_and_migrate_run_each_task_once(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """OLD holds queued (three priorities), countdown and retrying tasks; producers write to
        NEW; one worker per side; OLD's worker is restarted mid-backlog; migrate moves what is
        queued; after OLD's last warm shutdown a final migrate moves what it handed back. Every
        task runs exactly once, and results live on NEW only."""
        jobs = (
            produce("produce_celery.py", old_redis.url, "queued", 0, 200, 0.01)
            + produce("produce_celery.py", old_redis.url, "later", 0, 10, 2)
            + produce("produce_celery.py", old_redis.url, "flaky", 0, 5)
        )
        old, new = old_redis.client(), new_redis.client()
        on_old = exec_worker(fleet_env(old_redis, new_redis, OLD_SEED), "w-old")
        on_new = exec_worker(fleet_env(old_redis, new_redis, NEW_SEED), "w-new")
        try:
            jobs += produce("produce_celery.py", new_redis.url, "queued", 1000, 100)
            wait_for(lambda: old.hlen("ledger") >= 20, what="OLD's worker under way")
            term(on_old)  # the rolling restart
            on_old = exec_worker(fleet_env(old_redis, new_redis, OLD_SEED), "w-old-2")
            moved = run_cointoss(
                ["migrate", "--follow", "--json"],
                fleet_env(old_redis, new_redis, OLD_SEED),
                timeout=240,
            )
            assert moved.returncode == 0, moved.stderr
            first = json.loads(moved.stdout)["total"]
            term(on_old)  # OLD retires: its reserved, ETA and retry messages return to OLD's list
            moved = run_cointoss(["migrate", "--json"], fleet_env(old_redis, new_redis, OLD_SEED))
            assert moved.returncode == 0, moved.stderr
            assert first + json.loads(moved.stdout)["total"] > 0
            wait_for(lambda: set(ledger(old, new)) == expected(jobs), timeout=120, what="all run")
        finally:
            term(on_old)
            term(on_new)
        runs = ledger(old, new)
        assert set(runs.values()) == {1}, {jid: n for jid, n in runs.items() if n != 1}
        assert len(runs) == 315
        assert old.hlen("unacked") == 0 and sum(old.llen(q) for q in ("celery",)) == 0
        assert list(old.scan_iter(match="celery-task-meta-*")) == []  # results stayed on NEW
        assert list(new.scan_iter(match="celery-task-meta-*"))


class TestSupervisedFleet:
    def test_supervise_moves_its_celery_worker_onto_new_once_old_drains(
        self, supervised: Callable[..., Any], old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """The worker on OLD empties it (queues and unacked); supervise restarts it on NEW."""
        jobs = produce("produce_celery.py", old_redis.url, "queued", 0, 30, 0.01)
        env = {
            **fleet_env(old_redis, new_redis, OLD_SEED),
            **FAST_DRAIN,
        }
        sup = supervised(celery_argv("w-sup"), env)
        (selected,) = sup.wait_event("redis_selected")
        assert selected["side"] == "old"
        jobs += produce("produce_celery.py", new_redis.url, "queued", 1000, 20)
        (restart,) = sup.wait_event("worker_restarting", timeout=120)
        assert restart["reason"] == "old_drained"
        old, new = old_redis.client(), new_redis.client()
        wait_for(lambda: set(ledger(old, new)) == expected(jobs), what="every task run")
        assert set(ledger(old, new).values()) == {1}
        assert old.hlen("ledger") == 30


@pytest.fixture(autouse=True)
def _queue_systems_installed() -> None:
    queue_venv()
