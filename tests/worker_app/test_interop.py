"""Interop with the real Sidekiq 6.4.1 (Debian's ruby-sidekiq): both directions, API and bytes.

Under CI=true these run (a missing Sidekiq fails them); elsewhere they skip without it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from supervisor.demo.embedded_redis import RedisServer
from tests.worker_app.helpers import (
    requires_sidekiq,
    ruby_client,
    sidekiq,
    started,
    wait_until,
    worker,
)
from worker_app import keys
from worker_app.client import Client
from worker_app.jobs import build_job, dump_job

pytestmark = [pytest.mark.interop, requires_sidekiq]

TRICKY_ARGS = [1, "two", "é / </script>", "\u2028 \x1f \t", {"nested": [None, True, 2.5]}, 10**15]


def ledger(server: RedisServer) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in server.client().hgetall(keys.LEDGER).items()}


def test_jobs_from_rubys_client_run_in_worker_app(new_redis: RedisServer, tmp_path: Path) -> None:
    """Immediate, scheduled and failing jobs pushed by Sidekiq's own client all run in worker_app."""
    immediate = ruby_client(new_redis.url, "push", "RecordJob", '[1, "a"]', "5")
    scheduled = ruby_client(new_redis.url, "schedule", "RecordJob", "1", "[2]")
    (failing,) = ruby_client(new_redis.url, "push", "FailJob", "[1]")
    r = new_redis.client()
    with worker(new_redis.url, tmp_path) as proc:
        started(proc)
        wait_until(lambda: set(ledger(new_redis)) == set(immediate + scheduled), what="ruby's jobs")
        (member,) = wait_until(lambda: r.zrange("retry", 0, -1), what="the failure")
        assert json.loads(member)["jid"] == failing
        assert proc.stop() == 0
    assert all(count == 1 for count in ledger(new_redis).values())


def test_worker_app_jobs_run_in_real_sidekiq(new_redis: RedisServer, tmp_path: Path) -> None:
    """Jobs from worker_app's producer are run by a real `sidekiq` process, each exactly once."""
    jids = Client(new_redis.url).push_bulk("RecordJob", [[i, "x"] for i in range(20)])
    with sidekiq(new_redis.url, tmp_path, concurrency=3):
        wait_until(lambda: len(ledger(new_redis)) == 20, timeout=60, what="sidekiq to run them")
    assert ledger(new_redis) == dict.fromkeys(jids, 1)


def test_worker_app_retry_is_read_and_retried_by_real_sidekiq(
    new_redis: RedisServer, tmp_path: Path
) -> None:
    """A job that failed in worker_app is a proper RetrySet entry; Sidekiq retries and runs it."""
    jid = Client(new_redis.url).push("FailJob", [1])
    r = new_redis.client()
    with worker(new_redis.url, tmp_path) as proc:
        started(proc)
        wait_until(lambda: r.zcard("retry") == 1, what="the retry")
        assert proc.stop() == 0
    (entry,) = ruby_client(new_redis.url, "retries")
    assert entry["jid"] == jid and entry["class"] == "FailJob" and entry["args"] == [1]
    assert entry["error_class"] == "RuntimeError" and entry["retry_count"] == 0
    assert entry["at"] > time.time() + 10  # backoff of at least 15 s
    ruby_client(new_redis.url, "retry_all")
    with sidekiq(new_redis.url, tmp_path):
        wait_until(
            lambda: r.get(keys.ATTEMPTS_PREFIX + jid) == b"2", timeout=60, what="sidekiq's run"
        )
        wait_until(lambda: r.llen("queue:default") == 0, what="queue drained")
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0


def test_process_set_sees_busy_and_quiet(new_redis: RedisServer, tmp_path: Path) -> None:
    """Sidekiq::ProcessSet counts worker_app with the right busy count; quiet! via the API works."""
    Client(new_redis.url).push_bulk("SleepJob", [[30], [30]])
    env = {"WORKER_CONCURRENCY": "3", "WORKER_SHUTDOWN_TIMEOUT": "2"}
    with worker(new_redis.url, tmp_path, **env) as proc:
        identity = started(proc)
        wait_until(lambda: new_redis.client().hget(identity, "busy") == b"2", what="busy=2")
        (seen,) = ruby_client(new_redis.url, "processes")
        assert seen["identity"] == identity and seen["busy"] == 2 and seen["quiet"] is False
        assert seen["concurrency"] == 3 and seen["queues"] == ["default"]
        stats = ruby_client(new_redis.url, "stats")
        assert stats["processes_size"] == 1 and stats["workers_size"] == 2
        ruby_client(new_redis.url, "quiet_all")
        wait_until(lambda: new_redis.client().hget(identity, "quiet") == b"true", what="quiet")
        (seen,) = ruby_client(new_redis.url, "processes")
        assert seen["quiet"] is True
        assert proc.stop() == 0
    assert ruby_client(new_redis.url, "processes") == []


def test_json_bytes_equal_rubys(new_redis: RedisServer) -> None:
    """For the same job (jid, timestamps, args), worker_app writes exactly Ruby's bytes."""
    r = new_redis.client()
    ruby_client(new_redis.url, "push", "RecordJob", json.dumps(TRICKY_ARGS))
    ruby_client(new_redis.url, "schedule", "RecordJob", "60", json.dumps(TRICKY_ARGS))
    ruby_raw = r.lindex("queue:default", 0)
    ruby_job = json.loads(ruby_raw)
    ours = build_job("RecordJob", TRICKY_ARGS, created_at=ruby_job["created_at"])
    ours["jid"], ours["enqueued_at"] = ruby_job["jid"], ruby_job["enqueued_at"]
    assert dump_job(ours) == ruby_raw
    (ruby_member,) = r.zrange("schedule", 0, -1)
    member_job = json.loads(ruby_member)
    ours = build_job("RecordJob", TRICKY_ARGS, scheduled=True, created_at=member_job["created_at"])
    ours["jid"] = member_job["jid"]
    assert dump_job(ours) == ruby_member
