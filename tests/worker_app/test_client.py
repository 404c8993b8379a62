"""The producer API and the `python -m worker_app.enqueue` command, against a real redis-server."""

from __future__ import annotations

import json
import time

from supervisor.demo.embedded_redis import RedisServer
from tests.worker_app.helpers import enqueue_cli
from worker_app.client import Client


def test_push_writes_sidekiqs_layout(new_redis: RedisServer) -> None:
    """An immediate push SADDs `queues` and LPUSHes compact JSON with float timestamps."""
    jid = Client(new_redis.url).push("RecordJob", [1, "two"], queue="critical")
    r = new_redis.client()
    assert r.smembers("queues") == {b"critical"}
    (raw,) = r.lrange("queue:critical", 0, -1)
    job = json.loads(raw)
    assert list(job) == ["retry", "queue", "args", "class", "jid", "created_at", "enqueued_at"]
    assert job["jid"] == jid and job["args"] == [1, "two"] and job["queue"] == "critical"
    assert b" " not in raw and isinstance(job["enqueued_at"], float)


def test_scheduled_push_goes_to_schedule_without_at_or_enqueued_at(new_redis: RedisServer) -> None:
    """A future job is a `schedule` member scored by float epoch seconds, with no at/enqueued_at."""
    before = time.time()
    Client(new_redis.url).push("NoopJob", [], delay=60)
    r = new_redis.client()
    ((member, score),) = r.zrange("schedule", 0, -1, withscores=True)
    job = json.loads(member)
    assert "at" not in job and "enqueued_at" not in job
    assert before + 59 < score < time.time() + 61
    assert r.exists("queue:default") == 0 and r.exists("queues") == 0


def test_past_time_pushes_immediately(new_redis: RedisServer) -> None:
    """Like perform_at with a past time, the job is queued now."""
    Client(new_redis.url).push("NoopJob", [], at=time.time() - 10)
    assert new_redis.client().llen("queue:default") == 1


def test_bulk_push_keeps_order_and_unique_jids(new_redis: RedisServer) -> None:
    """A bulk push is popped in the order given, every job with its own jid."""
    jids = Client(new_redis.url).push_bulk("NoopJob", [[i] for i in range(2500)])
    r = new_redis.client()
    popped = [json.loads(r.rpop("queue:default"))["args"][0] for _ in range(2500)]
    assert popped == list(range(2500)) and len(set(jids)) == 2500


def test_enqueue_command_pushes_count_jobs_to_the_producer_url(new_redis: RedisServer) -> None:
    """The CLI pushes N jobs of the class, with the args given, and prints a JSON summary."""
    done = enqueue_cli(new_redis.url, "--class", "RecordJob", "--count", "7", "--args", '[1,"a"]')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["count"] == 7
    jobs = [json.loads(raw) for raw in new_redis.client().lrange("queue:default", 0, -1)]
    assert {job["class"] for job in jobs} == {"RecordJob"} and jobs[0]["args"] == [1, "a"]


def test_enqueue_in_schedules(new_redis: RedisServer) -> None:
    """--in SECONDS schedules instead of queueing; --queue is kept in the member."""
    done = enqueue_cli(
        new_redis.url, "--class", "NoopJob", "--count", "3", "--in", "30", "--queue", "low"
    )
    assert done.returncode == 0, done.stderr
    members = new_redis.client().zrange("schedule", 0, -1)
    assert len(members) == 3 and {json.loads(m)["queue"] for m in members} == {"low"}


def test_enqueue_bad_args_is_a_one_line_usage_error(new_redis: RedisServer) -> None:
    """Args that are not a JSON array exit 64 with one line and push nothing."""
    done = enqueue_cli(new_redis.url, "--class", "NoopJob", "--args", '{"a":1}')
    assert done.returncode == 64
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert new_redis.client().dbsize() == 0


def test_enqueue_unreachable_redis_exits_69_without_the_password(redis_factory) -> None:  # type: ignore[no-untyped-def]
    """A dead producer Redis is exit 69 and the URL password appears nowhere in the output."""
    server = redis_factory(password="s3cret-enqueue-pw").start()
    url = server.url
    server.stop()
    done = enqueue_cli(url, "--class", "NoopJob")
    assert done.returncode == 69
    assert "s3cret-enqueue-pw" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
