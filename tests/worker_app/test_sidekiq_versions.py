"""worker_app against Sidekiq 7 and 8 Redis state: the fixture jobs and heartbeats, loaded into a
real redis-server, run by the real `python -m worker_app` process."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from supervisor.demo.embedded_redis import RedisServer
from tests.worker_app.helpers import sidekiq_fixture, started, wait_until, worker
from worker_app.client import Client
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


def test_heartbeat_carries_what_sidekiq_7_and_8_read(
    new_redis: RedisServer, tmp_path: Path
) -> None:
    """worker_app's `<identity>` hash and `info` hold every field of the Sidekiq 7.3.10 and 8.1.7
    fixtures, with the same types (8.1's ProcessSet reads the concurrency from the hash itself),
    and `<identity>:work` holds a running job as 7.x/8.x's WorkSet reads it."""
    seven, eight = (sidekiq_fixture(f"sidekiq{n}-heartbeat-hash.json")["hash"] for n in (7, 8))
    (work_8,) = sidekiq_fixture("sidekiq8-work-hash.json")["hash"].values()
    Client(new_redis.url).push("SleepJob", [4])  # still running when the test reads it
    r = new_redis.client()
    env = {"WORKER_CONCURRENCY": "3", "WORKER_QUEUES": "critical:3,default:1"}
    with worker(new_redis.url, tmp_path, **env) as proc:
        identity = started(proc)
        wait_until(lambda: r.hget(identity, "busy") == b"1", what="the job in the heartbeat")
        beat = {k.decode(): v.decode() for k, v in r.hgetall(identity).items()}
        (work,) = r.hgetall(f"{identity}:work").values()
        assert proc.stop() == 0
    assert {k: type(v) for k, v in json.loads(work).items()} == {
        k: type(v) for k, v in json.loads(work_8).items()
    }  # what 7.x/8.x's WorkSet reads: queue, payload (a JSON string), run_at (integer seconds)
    assert set(beat) >= set(seven) | set(eight)
    assert int(beat["concurrency"]) == 3  # Sidekiq 8.1.2+: `concurrency.to_i`, 0 when missing
    info = json.loads(beat["info"])
    for reference in (json.loads(seven["info"]), json.loads(eight["info"])):
        assert {key: type(info[key]) for key in reference} == {
            key: type(value) for key, value in reference.items()
        }
    assert info["capsules"] == {
        "default": {"concurrency": 3, "mode": "weighted", "weights": {"critical": 3, "default": 1}}
    }
    assert info["weights"] == [{"critical": 3, "default": 1}]  # 7.x's busy page
    assert info["queues"] == ["critical", "default"] and info["concurrency"] == 3  # 6.x
    assert info["version"] and info["embedded"] is False and info["identity"] == identity
