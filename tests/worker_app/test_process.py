"""The real `python -m worker_app` process: jobs, schedule, retries, signals, crashes, outages."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from supervisor.demo.embedded_redis import RedisServer
from tests.worker_app.helpers import started, wait_until, worker
from worker_app import keys
from worker_app.client import Client


def ledger(server: RedisServer) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in server.client().hgetall(keys.LEDGER).items()}


def inflight_total(server: RedisServer) -> int:
    r = server.client()
    return sum(r.llen(key) for key in r.scan_iter(match="queue:sq|*"))


def test_every_job_runs_exactly_once_and_stats_are_flushed(
    new_redis: RedisServer, tmp_path: Path
) -> None:
    """300 RecordJobs: each jid in the ledger once, nothing left in flight, counters flushed at exit."""
    jids = Client(new_redis.url).push_bulk("RecordJob", [[i] for i in range(300)])
    with worker(new_redis.url, tmp_path, WORKER_CONCURRENCY="5") as proc:
        identity = started(proc)
        wait_until(lambda: len(ledger(new_redis)) == 300, what="300 jobs")
        assert proc.stop() == 0
    assert ledger(new_redis) == dict.fromkeys(jids, 1)
    r = new_redis.client()
    assert r.llen("queue:default") == 0 and inflight_total(new_redis) == 0
    assert int(r.get("stat:processed")) == 300 and int(r.get("stat:failed") or 0) == 0
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert int(r.get(f"stat:processed:{today}")) == 300 and r.ttl(f"stat:processed:{today}") > 10**8
    assert identity.encode() not in r.smembers("processes")
    done = proc.named("job_done")
    assert len(done) == 300 and {line["host"] for line in done} == {f"127.0.0.1:{new_redis.port}/0"}


def test_scheduled_job_runs_when_due_and_a_retry_succeeds(
    new_redis: RedisServer, tmp_path: Path
) -> None:
    """A job scheduled 1 s ahead runs; a FailJob lands in `retry` and succeeds when it comes due."""
    client = Client(new_redis.url)
    scheduled = client.push("RecordJob", [], delay=1)
    failing = client.push("FailJob", [1])
    r = new_redis.client()
    with worker(new_redis.url, tmp_path) as proc:
        started(proc)
        wait_until(lambda: ledger(new_redis).get(scheduled) == 1, what="scheduled job")
        (member,) = wait_until(lambda: r.zrange("retry", 0, -1), what="a retry")
        job = json.loads(member)
        assert (
            job["jid"] == failing
            and job["error_class"] == "RuntimeError"
            and job["retry_count"] == 0
        )
        r.zadd("retry", {member: time.time()})  # as if its 15+ s backoff had passed
        wait_until(lambda: r.get(keys.ATTEMPTS_PREFIX + failing) == b"2", what="second attempt")
        wait_until(
            lambda: r.zcard("retry") == 0 and r.llen("queue:default") == 0, what="retry drained"
        )
        assert proc.stop() == 0
    assert r.zcard("dead") == 0 and int(r.get("stat:failed")) == 1


def test_malformed_payload_goes_to_dead_raw_and_unknown_class_retries(
    new_redis: RedisServer, tmp_path: Path
) -> None:
    """Bad JSON is buried as its raw bytes, an unknown class takes the retry path, the worker lives on."""
    r = new_redis.client()
    r.lpush("queue:default", b"{definitely not json")
    unknown = Client(new_redis.url).push("NoSuchJob", [1])
    after = Client(new_redis.url).push("RecordJob", [])
    with worker(new_redis.url, tmp_path, WORKER_CONCURRENCY="1") as proc:
        started(proc)
        wait_until(lambda: ledger(new_redis).get(after) == 1, what="the good job")
        assert r.zrange("dead", 0, -1) == [b"{definitely not json"]
        (member,) = r.zrange("retry", 0, -1)
        job = json.loads(member)
        assert job["jid"] == unknown and job["error_class"] == "NameError"
        assert job["error_message"] == "uninitialized constant NoSuchJob"
        assert proc.proc.poll() is None
        assert proc.stop() == 0


def test_term_puts_unfinished_jobs_back_unchanged_within_the_timeout(
    new_redis: RedisServer, tmp_path: Path
) -> None:
    """Jobs still running at WORKER_SHUTDOWN_TIMEOUT go back byte for byte; exit 0 in time."""
    Client(new_redis.url).push_bulk("SleepJob", [[30], [30]])
    r = new_redis.client()
    originals = set(r.lrange("queue:default", 0, -1))
    env = {"WORKER_CONCURRENCY": "2", "WORKER_SHUTDOWN_TIMEOUT": "3"}
    with worker(new_redis.url, tmp_path, **env) as proc:
        identity = started(proc)
        wait_until(lambda: r.hget(identity, "busy") == b"2", what="busy=2 in the heartbeat")
        work = r.hgetall(f"{identity}:work")
        assert {json.loads(v)["payload"].encode() for v in work.values()} == originals
        assert r.hgetall(f"{identity}:workers") == work  # what Sidekiq 6.4.1's API reads
        assert 0 < r.ttl(identity) <= 60
        beat = r.hgetall(identity)
        fields = {b"info", b"concurrency", b"busy", b"beat", b"quiet", b"rss", b"rtt_us"}
        assert set(beat) == fields and beat[b"concurrency"] == b"2"
        assert int(beat[b"rss"]) > 1000 and int(beat[b"rtt_us"]) > 0 and beat[b"quiet"] == b"false"
        info = json.loads(beat[b"info"])
        assert (
            info["identity"] == identity
            and info["concurrency"] == 2
            and info["queues"] == ["default"]
        )
        began = time.monotonic()
        assert proc.stop(timeout=25) == 0
        # the jobs sleep 30 s: ending well before that proves the 3 s timeout cut them short
        # (a generous bound, so a loaded machine cannot fail it)
        assert time.monotonic() - began < 20
    assert set(r.lrange("queue:default", 0, -1)) == originals
    assert inflight_total(new_redis) == 0 and len(proc.named("job_requeued")) == 2


def test_term_lets_short_jobs_finish(new_redis: RedisServer, tmp_path: Path) -> None:
    """Jobs that end before the timeout finish and are acknowledged, not requeued."""
    Client(new_redis.url).push_bulk("SleepJob", [[1], [1]])
    r = new_redis.client()
    with worker(new_redis.url, tmp_path, WORKER_CONCURRENCY="2") as proc:
        identity = started(proc)
        wait_until(lambda: r.hget(identity, "busy") == b"2", what="both running")
        assert proc.stop() == 0
    assert r.llen("queue:default") == 0 and inflight_total(new_redis) == 0
    assert int(r.get("stat:processed")) == 2 and proc.named("job_requeued") == []


def test_sigkill_mid_job_is_recovered_by_another_worker(
    new_redis: RedisServer, tmp_path: Path
) -> None:
    """A job held by a SIGKILLed worker returns to its queue once the heartbeat expires, and runs."""
    jid = Client(new_redis.url).push("SleepJob", [2])
    r = new_redis.client()
    short_ttl = {"WORKER_HEARTBEAT_TTL": "2", "WORKER_CONCURRENCY": "1"}
    with worker(new_redis.url, tmp_path, **short_ttl) as victim:
        identity = started(victim)
        wait_until(lambda: r.hget(identity, "busy") == b"1", what="the job running")
        victim.proc.kill()
        victim.proc.wait(10)
    assert inflight_total(new_redis) == 1
    with worker(new_redis.url, tmp_path, **short_ttl) as rescuer:
        started(rescuer)
        wait_until(
            lambda: any(e.get("jid") == jid for e in rescuer.named("job_done")),
            timeout=30,
            what="the rerun",
        )
        assert rescuer.named("orphans_recovered")
        assert rescuer.stop() == 0
    assert inflight_total(new_redis) == 0


def test_worker_carries_on_after_a_redis_restart(redis_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Redis goes away and comes back empty: the worker reconnects, re-registers and runs new jobs."""
    server = redis_factory().start()
    with worker(server.url, tmp_path, WORKER_CONCURRENCY="3") as proc:
        identity = started(proc)
        first = Client(server.url).push_bulk("RecordJob", [[i] for i in range(50)])
        wait_until(lambda: len(ledger(server)) == 50, what="first batch")
        server.restart()
        time.sleep(1.0)
        second = Client(server.url).push_bulk("RecordJob", [[i] for i in range(50)])
        wait_until(lambda: set(ledger(server)) == set(second), timeout=30, what="second batch")
        wait_until(lambda: server.client().sismember("processes", identity), what="re-registration")
        assert proc.named("redis_unavailable") and proc.proc.poll() is None
        assert proc.stop() == 0
    assert set(first).isdisjoint(ledger(server)) and all(v == 1 for v in ledger(server).values())


def test_term_while_redis_is_down_still_exits_in_time(redis_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With Redis gone, TERM still ends the worker (exit 0) within WORKER_SHUTDOWN_TIMEOUT."""
    server = redis_factory().start()
    with worker(server.url, tmp_path, WORKER_SHUTDOWN_TIMEOUT="3") as proc:
        started(proc)
        server.stop()
        proc.wait_for("redis_unavailable")
        # liveness only: a worker stuck reconnecting would never exit
        assert proc.stop(timeout=15) == 0


def test_tstp_quiets_and_remote_signals_are_honoured(
    new_redis: RedisServer, tmp_path: Path
) -> None:
    """TSTP stops fetching (quiet=true); TTIN via `-signals` dumps threads; TERM via `-signals` stops."""
    r = new_redis.client()
    with worker(new_redis.url, tmp_path) as proc:
        identity = started(proc)
        proc.send(signal.SIGTSTP)
        wait_until(lambda: r.hget(identity, "quiet") == b"true", what="quiet=true")
        jid = Client(new_redis.url).push("RecordJob", [])
        time.sleep(1.5)
        assert jid not in ledger(new_redis) and r.llen("queue:default") == 1
        r.lpush(f"{identity}-signals", "TTIN")
        dump = proc.wait_for("thread_dump")
        assert dump["stack"]
        r.lpush(f"{identity}-signals", "TERM")
        assert proc.proc.wait(15) == 0
    assert r.llen("queue:default") == 1 and not r.sismember("processes", identity)


def test_spawn_job_pushes_to_the_producer_url(
    old_redis: RedisServer, new_redis: RedisServer, tmp_path: Path
) -> None:
    """A job consumed from OLD pushes the jobs it creates to REDIS_PRODUCER_URL (NEW)."""
    spawner = Client(old_redis.url).push("SpawnJob", [4])
    with worker(old_redis.url, tmp_path, REDIS_PRODUCER_URL=new_redis.url) as proc:
        started(proc)
        wait_until(lambda: new_redis.client().llen("queue:default") == 4, what="4 jobs on NEW")
        assert proc.stop() == 0
    spawned = [json.loads(raw) for raw in new_redis.client().lrange("queue:default", 0, -1)]
    assert {job["class"] for job in spawned} == {"RecordJob"}
    assert (
        sorted(job["args"][1] for job in spawned) == [0, 1, 2, 3]
        and spawned[0]["args"][0] == spawner
    )
    assert old_redis.client().llen("queue:default") == 0


def test_weighted_queues_are_all_served(new_redis: RedisServer, tmp_path: Path) -> None:
    """With `critical:3,default:1` jobs on both queues all run."""
    client = Client(new_redis.url)
    jids = client.push_bulk("RecordJob", [[i] for i in range(20)], queue="critical")
    jids += client.push_bulk("RecordJob", [[i] for i in range(20)], queue="default")
    with worker(new_redis.url, tmp_path, WORKER_QUEUES="critical:3,default:1") as proc:
        started(proc)
        wait_until(lambda: len(ledger(new_redis)) == 40, what="both queues")
        assert proc.stop() == 0
    assert ledger(new_redis) == dict.fromkeys(jids, 1)


def test_password_never_reaches_the_log(redis_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With a password in REDIS_URL, logs name the host but never the password."""
    server = redis_factory(password="pw-Zq81-never-log").start()
    Client(server.url).push("FailJob", [1])
    with worker(server.url, tmp_path) as proc:
        started(proc)
        wait_until(lambda: proc.named("job_failed"), what="a failure line")
        assert proc.stop() == 0
    log = proc.raw_log()
    assert "pw-Zq81-never-log" not in log and f"127.0.0.1:{server.port}/0" in log


def test_bad_setting_is_one_line_and_exit_78(new_redis: RedisServer, tmp_path: Path) -> None:
    """An unusable WORKER_CONCURRENCY exits 78 with one line naming it, no traceback."""
    with worker(new_redis.url, tmp_path, WORKER_CONCURRENCY="many") as proc:
        assert proc.proc.wait(30) == 78
    lines = proc.raw_log().strip().splitlines()
    assert len(lines) == 1 and "WORKER_CONCURRENCY" in lines[0]


def test_wrong_password_exits_78_without_leaking_it(redis_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Credentials Redis refuses are a configuration error (78), logged without the password."""
    server = redis_factory(password="right-pw-1").start()
    wrong = server.url.replace("right-pw-1", "wrong-pw-Xy7")
    with worker(wrong, tmp_path) as proc:
        assert proc.proc.wait(30) == 78
    assert proc.named("redis_auth_failed") and "wrong-pw-Xy7" not in proc.raw_log()


def test_malformed_redis_url_is_one_line_and_exit_78(tmp_path: Path) -> None:
    """A REDIS_URL that is not a Redis URL exits 78 with one line naming it."""
    with worker("http://user:pw-url-secret@host/0", tmp_path) as proc:
        assert proc.proc.wait(30) == 78
    lines = proc.raw_log().strip().splitlines()
    assert len(lines) == 1 and "REDIS_URL" in lines[0] and "pw-url-secret" not in lines[0]


@pytest.mark.slow
def test_rolling_restart_of_two_workers_runs_every_job_exactly_once(
    new_redis: RedisServer, tmp_path: Path
) -> None:
    """3,000 RecordJobs, two workers, one stopped with TERM mid-run and replaced: no loss, no double."""
    jids = Client(new_redis.url).push_bulk("RecordJob", [[i] for i in range(3000)])
    with (
        worker(new_redis.url, tmp_path, WORKER_CONCURRENCY="4") as first,
        worker(new_redis.url, tmp_path, WORKER_CONCURRENCY="4") as second,
    ):
        started(first)
        started(second)
        wait_until(lambda: len(ledger(new_redis)) > 500, what="a first share")
        assert first.stop() == 0
        with worker(new_redis.url, tmp_path, WORKER_CONCURRENCY="4") as third:
            started(third)
            wait_until(lambda: len(ledger(new_redis)) == 3000, timeout=120, what="all 3,000")
            assert third.stop() == 0
        assert second.stop() == 0
    assert ledger(new_redis) == dict.fromkeys(jids, 1)
    assert inflight_total(new_redis) == 0 and new_redis.client().llen("queue:default") == 0
