"""worker_app against Sidekiq 7 and 8 Redis state: the fixture jobs and heartbeats, loaded into a
real redis-server, run by the real `python -m worker_app` process."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from supervisor.embedded_redis import RedisServer
from tests.worker_app.helpers import sidekiq_fixture, started, wait_until, worker
from worker_app.jobs import dump_job, new_jid

DAY_S = 86_400


def _members(server: RedisServer, zset: str) -> dict[str, dict[str, Any]]:
    """The jobs of a sorted set by jid."""
    jobs = (json.loads(raw) for raw in server.client().zrange(zset, 0, -1))
    return {job["jid"]: job for job in jobs}


@pytest.mark.parametrize(
    ("fixture", "stamp_type", "per_second"),
    [("sidekiq8-retry-member.json", int, 1000), ("sidekiq7-retry-member.json", float, 1)],
)
def test_retry_for_decides_dead_or_retry_whatever_the_timestamp_unit(
    new_redis: RedisServer, tmp_path: Path, fixture: str, stamp_type: type, per_second: int
) -> None:
    """A retry member failing again dies once `failed_at + retry_for` has passed (Sidekiq 8's
    integer ms or 6/7's float seconds), retries while the window is open, even past its count
    (8.1: retry_for and a retry count are exclusive); timestamps are written as float seconds."""
    entry = sidekiq_fixture(fixture)
    job = json.loads(entry["member"])
    assert type(job["failed_at"]) is stamp_type  # the unit under test, as the fixture holds it
    age_s = int(time.time() - job["failed_at"] / per_second)  # read without worker_app's code
    expired = {**job, "jid": new_jid(), "retry_for": age_s - 3600}  # closed an hour ago
    open_window = {**job, "jid": new_jid(), "retry_for": age_s + DAY_S}
    past_count = {**open_window, "jid": new_jid(), "retry": 2, "retry_count": 30}
    r = new_redis.client()
    due = time.time() - 1
    r.zadd("retry", {dump_job(each): due for each in (expired, open_window, past_count)})
    with worker(new_redis.url, tmp_path, WORKER_QUEUES="default,critical") as proc:
        started(proc)
        wait_until(lambda: len(proc.named("job_failed")) == 3, what="three failures")
        assert proc.stop() == 0
    dead, retry = _members(new_redis, "dead"), _members(new_redis, "retry")
    assert set(dead) == {expired["jid"]}
    assert set(retry) == {open_window["jid"], past_count["jid"]}
    assert min(score for _, score in r.zrange("retry", 0, -1, withscores=True)) > time.time()
    died = dead[expired["jid"]]
    assert died["failed_at"] == job["failed_at"] and type(died["failed_at"]) is stamp_type
    assert type(died["retried_at"]) is float and died["retried_at"] > due
    assert died["retry_count"] == job["retry_count"] + 1
    assert type(died["created_at"]) is stamp_type  # Sidekiq's own stamps are kept as they are
