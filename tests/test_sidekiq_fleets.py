"""Sidekiq 7 and 8 fleets (issue 12), supervisor side: what a real 7.3.10 fleet and 8.1.7's
layout leave in Redis, loaded from tests/fixtures/sidekiq/ (kept from ../shared/fixtures/sidekiq/)
into real redis-servers, as status, migrate and supervise's drain checks read it.

The fixtures were captured at a fixed moment; each test moves their timestamps to the ages its
scenario needs, keeping each one's JSON type (float seconds stay floats, integer milliseconds
stay integers), since the type is what tells Sidekiq 8 the unit.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from supervisor.demo.embedded_redis import RedisServer
from supervisor.layouts.sidekiq.backlog import read_backlog
from supervisor.layouts.sidekiq.heartbeats import read_heartbeats
from supervisor.supervision.convergence import Confirmations
from tests.conftest import SIDEKIQ_FIXTURES, run_cointoss, start_cointoss
from tests.supervise_support import recorder, starts, wait_until
from tests.test_supervise_convergence import convergence_env, seed_backlog

FIXTURES = SIDEKIQ_FIXTURES
STAMPS = ("created_at", "enqueued_at", "failed_at", "retried_at")
HOUR, DAY = 3600.0, 86400.0
ITERABLE_STATE = {
    "ex": "3",
    "c": "1234",
    "rt": "12.5",
}  # 7.3.10 iterable.rb: executions, cursor, runtime


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def aged(member: str, age_s: float, now: float) -> str:
    """The job with every timestamp `age_s` old, each in its own unit (int ms or float s)."""
    job = json.loads(member)
    for name in STAMPS:
        if isinstance(job.get(name), float):
            job[name] = now - age_s
        elif isinstance(job.get(name), int):
            job[name] = int((now - age_s) * 1000)
    return json.dumps(job, separators=(",", ":"))


def load_heartbeat(
    client: redis.Redis, name: str, *, beat: float, busy: int, ttl: int | None
) -> str:
    """A fixture's `<identity>` hash, listed in `processes`, with the beat, busy and TTL given."""
    found = fixture(name)
    identity = found["key"]
    client.sadd("processes", identity)
    client.hset(identity, mapping={**found["hash"], "beat": repr(beat), "busy": str(busy)})
    if ttl is not None:
        client.expire(identity, ttl)
    return identity


def urls(old: RedisServer, new: RedisServer) -> dict[str, str]:
    return {"MIGRATION_OLD_REDIS_URL": old.url, "MIGRATION_NEW_REDIS_URL": new.url}


def status_json(old: RedisServer, new: RedisServer) -> tuple[int, dict[str, Any]]:
    result = run_cointoss(["status", "--json"], urls(old, new))
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


class TestJobTimestamps:
    """Issue 12 item 1: Sidekiq 8's integer milliseconds are read as Sidekiq 8 reads them."""

    def test_status_ages_of_sidekiq_8_and_7_jobs(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A two-hour-old Sidekiq 8 job is 2 h old (was -1.8e12 s), next to 7.3.10's float seconds."""
        now = time.time()
        old, new = old_redis.client(), new_redis.client()
        old.lpush("queue:default", aged(fixture("sidekiq8-queue-member")["member"], 2 * HOUR, now))
        old.sadd("queues", "default")
        for side, version in ((old, "sidekiq8"), (new, "sidekiq7")):
            for key, age in (("schedule", 3 * HOUR), ("retry", 5 * HOUR)):
                found = fixture(f"{version}-{key}-member")
                side.zadd(key, {aged(found["member"], age, now): now + 600})
        _code, document = status_json(old_redis, new_redis)

        def age(side: str, *path: str) -> float:
            value: Any = document[side]
            for part in path:
                value = value[part]
            return float(value["oldest_age_s"])

        assert age("old", "queues", "default") == pytest.approx(2 * HOUR, abs=120)
        for side in ("old", "new"):
            assert age(side, "schedule") == pytest.approx(3 * HOUR, abs=120)
            assert age(side, "retry") == pytest.approx(5 * HOUR, abs=120)

        table = run_cointoss(["status"], urls(old_redis, new_redis)).stdout
        assert "(2.0h old)" in table and "(0s old)" not in table


class TestGhostProcesses:
    """Issue 12 item 5: a heartbeat hash that lost its TTL, with busy 2 and a four-day-old beat."""

    def load_ghost(self, client: redis.Redis) -> str:
        return load_heartbeat(
            client, "sidekiq7-heartbeat-hash", beat=time.time() - 4 * DAY, busy=2, ttl=None
        )

    def test_status_does_not_count_a_ghost_and_warns_with_its_identity_and_age(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Not live, not busy, OLD retirable; a warning names it and its last beat's age."""
        ghost = self.load_ghost(old_redis.client())
        code, document = status_json(old_redis, new_redis)
        assert (document["old"]["busy"], document["old"]["live_processes"]) == (0, 0)
        assert (code, document["verdict"]) == (0, "retirable")
        assert [g["identity"] for g in document["old"]["ghosts"]] == [ghost]
        assert document["old"]["ghosts"][0]["last_beat_age_s"] == pytest.approx(4 * DAY, abs=120)
        (warning,) = [w for w in document["warnings"] if ghost in w]
        assert "4.0d" in warning
        table = run_cointoss(["status"], urls(old_redis, new_redis)).stdout
        assert ghost in table

    def test_a_live_process_next_to_the_ghost_still_counts(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Only the ghost is dropped: Sidekiq 8's live process (TTL, fresh beat) is busy 1."""
        old = old_redis.client()
        self.load_ghost(old)
        live = load_heartbeat(
            old, "sidekiq8-heartbeat-hash", beat=time.time(), busy=1, ttl=fixture_ttl()
        )
        code, document = status_json(old_redis, new_redis)
        assert code == 1
        assert [p["identity"] for p in document["old"]["processes"]] == [live]
        assert document["old"]["busy"] == 1

    def test_migrate_follow_ends_despite_a_ghost(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """--follow used to wait for the ghost's busy 2 forever."""
        self.load_ghost(old_redis.client())
        old_redis.client().zadd("retry", {fixture("sidekiq7-retry-member")["member"]: 1.0})
        proc = start_cointoss(["migrate", "--follow", "--json"], urls(old_redis, new_redis))
        try:
            out, _ = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == 0
        assert json.loads(out)["total"] == 1

    def test_supervise_sees_old_drained_despite_a_ghost(self, old_redis: RedisServer) -> None:
        """The drain check's backlog (what supervise counts confirmations on) is drained."""
        self.load_ghost(old_redis.client())
        backlog = read_backlog(old_redis.client())
        assert (backlog.drained, backlog.busy, backlog.live_processes) == (True, 0, 0)


class TestWhatIsAGhost:
    """Only a hash nothing renews is judged by its beat; anything unsure stays live."""

    @pytest.mark.parametrize(
        ("beat_age_s", "ttl", "ghost"),
        [
            (4 * DAY, None, True),  # the input
            (61.0, None, True),  # just past the 60 s every version sets
            (30.0, None, False),  # no TTL, but beat within the expiry: maybe PERSISTed just now
            (4 * DAY, 55, False),  # a TTL (a copy that kept it): it expires by itself
        ],
    )
    def test_a_ghost_has_no_ttl_and_a_beat_past_the_expiry(
        self, old_redis: RedisServer, beat_age_s: float, ttl: int | None, ghost: bool
    ) -> None:
        old = old_redis.client()
        now = time.time()
        load_heartbeat(old, "sidekiq8-heartbeat-hash", beat=now - beat_age_s, busy=1, ttl=ttl)
        (heartbeat,) = read_heartbeats(old)
        assert heartbeat.ghost(now) is ghost
        assert read_backlog(old, now=now).busy == (0 if ghost else 1)

    def test_a_heartbeat_without_ttl_or_readable_beat_stays_live(
        self, old_redis: RedisServer
    ) -> None:
        """Nothing proves it dead: it keeps OLD busy (the safe error) rather than drained."""
        old = old_redis.client()
        identity = load_heartbeat(old, "sidekiq7-heartbeat-hash", beat=0.0, busy=1, ttl=None)
        old.hset(identity, "beat", "not a number")
        assert read_backlog(old).busy == 1


def fixture_ttl() -> int:
    """The TTL the real Sidekiq 7.3.10 heartbeat had at capture: a live hash expires."""
    return int(fixture("sidekiq7-heartbeat-hash")["ttl"])


class TestBeatsBeforeNothingRuns:
    """Issue 12 item 4: a 'nothing runs on OLD' decision spans two beats of each live process."""

    def test_drain_confirmations_wait_for_two_beats_of_a_sidekiq_7_process(
        self, old_redis: RedisServer
    ) -> None:
        """Three drained checks 1 s apart saw no beat of the 7.3.10 process: not yet confirmed.

        Its `busy` 0 is as old as its last beat, so a job it fetched since is invisible until it
        beats again (every 10 s); two fresh beats while still idle confirm.
        """
        old = old_redis.client()
        identity = load_heartbeat(
            old, "sidekiq7-heartbeat-hash", beat=time.time(), busy=0, ttl=fixture_ttl()
        )
        confirmations = Confirmations(needed=3)

        def check(at: float) -> Confirmations:
            backlog = read_backlog(old)
            return confirmations.observe(backlog.drained, backlog.heartbeats, at)

        for at in (0.0, 1.0, 2.0):
            confirmations = check(at)
        assert confirmations.count == 3 and not confirmations.confirmed
        for at in (12.0, 22.0):  # two beats of the 10 s period, still idle
            old.hset(identity, "beat", repr(time.time() + at))
            confirmations = check(at)
            assert confirmations.confirmed is (at == 22.0)

    def test_a_beat_showing_work_starts_the_confirmations_over(
        self, old_redis: RedisServer
    ) -> None:
        """The beat after the job started shows busy 1: the count starts over."""
        old = old_redis.client()
        identity = load_heartbeat(
            old, "sidekiq8-heartbeat-hash", beat=time.time(), busy=0, ttl=fixture_ttl()
        )
        confirmations = Confirmations(needed=2)
        for at, busy in ((0.0, 0), (10.0, 1), (20.0, 0), (30.0, 0)):
            old.hset(identity, mapping={"beat": repr(time.time() + at), "busy": busy})
            backlog = read_backlog(old)
            confirmations = confirmations.observe(backlog.drained, backlog.heartbeats, at)
            assert not confirmations.confirmed
        old.hset(identity, "beat", repr(time.time() + 40))
        backlog = read_backlog(old)
        assert confirmations.observe(backlog.drained, backlog.heartbeats, 40.0).confirmed

    def test_supervise_moves_its_worker_only_after_two_beats_of_a_sidekiq_7_process(
        self, supervised: Any, tmp_path: Path, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """OLD's queue empties while a 7.3.10 process reports busy 0: drain checks every 0.3 s
        count well past K=3 without confirming, until the process has beaten twice, still idle."""
        old = old_redis.client()
        seed_backlog(old)
        identity = load_heartbeat(
            old, "sidekiq7-heartbeat-hash", beat=time.time(), busy=0, ttl=fixture_ttl()
        )
        start_file = tmp_path / "starts"
        sup = supervised(
            recorder(tmp_path / "signals", "--starts", str(start_file)),
            convergence_env(old_redis.url, new_redis.url),
        )
        (first,) = wait_until(lambda: starts(start_file), what="the first life")
        assert first["choice"] == "old"
        old.delete("queue:default")
        wait_until(
            lambda: any(c["consecutive"] >= 6 for c in sup.events("drain_check")),
            what="six drained checks in a row",
        )
        assert sup.events("old_drained") == []
        for _beat in range(2):
            seen = len(sup.events("drain_check"))
            old.hset(identity, "beat", repr(time.time()))
            sup.wait_event("drain_check", seen + 1)
        (confirmed,) = sup.wait_event("old_drained")
        assert confirmed["checks"] >= 8

    def test_a_process_without_a_readable_beat_waits_two_periods_of_its_version(
        self, old_redis: RedisServer
    ) -> None:
        """Its beats cannot be counted: 7.3.10's 10 s period, twice, from the first quiet look."""
        old = old_redis.client()
        identity = load_heartbeat(
            old, "sidekiq7-heartbeat-hash", beat=time.time(), busy=0, ttl=fixture_ttl()
        )
        old.hdel(identity, "beat")
        confirmations = Confirmations(needed=3)
        for at in (0.0, 1.0, 2.0, 19.0, 20.0):
            backlog = read_backlog(old)
            confirmations = confirmations.observe(backlog.drained, backlog.heartbeats, at)
            assert confirmations.confirmed is (at == 20.0)

    def test_heartbeats_say_each_version_s_beat_period(self, old_redis: RedisServer) -> None:
        """7.3.10 and 8.1.7 carry `version` and beat every 10 s; 6.x's info has none: 5 s."""
        old = old_redis.client()
        now = time.time()
        for name in ("sidekiq7-heartbeat-hash", "sidekiq8-heartbeat-hash"):
            load_heartbeat(old, name, beat=now, busy=0, ttl=60)
        old.sadd("processes", "debian:1:0123456789ab")
        old.hset(
            "debian:1:0123456789ab",
            mapping={"info": json.dumps({"hostname": "debian", "pid": 1}), "beat": repr(now)},
        )
        old.expire("debian:1:0123456789ab", 60)
        periods = {h.version: h.period_s for h in read_heartbeats(old)}
        assert periods == {"7.3.10": 10.0, "8.1.7": 10.0, None: 5.0}

    def test_migrate_follow_moves_a_retry_that_lands_after_three_idle_looks(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """The issue's input: a 7.3.10 process reporting busy 0 while its job runs; the job fails
        into OLD's `retry` 4 s after --follow started (3 idle looks take 2 s). The follower is
        still there and moves it, then ends once the process beat twice idle."""
        old = old_redis.client()
        identity = load_heartbeat(
            old, "sidekiq7-heartbeat-hash", beat=time.time(), busy=0, ttl=fixture_ttl()
        )
        proc = start_cointoss(["migrate", "--follow", "--json"], urls(old_redis, new_redis))
        time.sleep(4)
        member = fixture("sidekiq7-retry-member")["member"]
        old.zadd("retry", {member: time.time() + 30})
        stop = threading.Event()

        def beat() -> None:  # the process goes on beating (every second here), idle
            while not stop.wait(1.0):
                old.hset(identity, "beat", repr(time.time()))

        beater = threading.Thread(target=beat, daemon=True)
        beater.start()
        try:
            out, _ = proc.communicate(timeout=60)
        finally:
            stop.set()
            beater.join()
            proc.kill()
            proc.wait()
        assert proc.returncode == 0
        assert json.loads(out)["total"] == 1
        assert new_redis.client().zrange("retry", 0, -1) == [member.encode()]
        assert old.zcard("retry") == 0


class TestIterableJobState:
    """Issue 12 item 3: `it-<jid>` (7.3+) moves with its job, TTL kept, in the same batch."""

    def test_state_moves_with_its_job_from_every_kind_of_key(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A retry (7.3.10), a scheduled and a queued job (8.1.7): each state goes to NEW with
        its expiry and leaves OLD; a job without state moves as before."""
        old, new = old_redis.client(), new_redis.client()
        retry = fixture("sidekiq7-retry-member")
        scheduled = fixture("sidekiq8-schedule-member")
        queued = fixture("sidekiq8-queue-member")["member"]
        plain = fixture("sidekiq7-schedule-member")
        old.zadd("retry", {retry["member"]: float(retry["score"])})
        old.zadd("schedule", {scheduled["member"]: float(scheduled["score"])})
        old.zadd("schedule", {plain["member"]: float(plain["score"])})
        old.lpush("queue:default", queued)
        old.sadd("queues", "default")
        expiries = {}
        for member, ttl_s in ((retry["member"], 20 * DAY), (scheduled["member"], 30 * DAY)):
            key = "it-" + json.loads(member)["jid"]
            old.hset(key, mapping=ITERABLE_STATE)
            old.expire(key, int(ttl_s))
            expiries[key] = old.pexpiretime(key)
        queued_key = "it-" + json.loads(queued)["jid"]
        old.hset(queued_key, mapping=ITERABLE_STATE)  # no TTL: none on NEW either
        result = run_cointoss(
            ["migrate", "--only", "schedule,retry,queues", "--json"], urls(old_redis, new_redis)
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["total"] == 4
        for key, expiry in expiries.items():
            assert new.hgetall(key) == {f.encode(): v.encode() for f, v in ITERABLE_STATE.items()}
            assert abs(new.pexpiretime(key) - expiry) < 1000
        assert new.hgetall(queued_key) and new.ttl(queued_key) == -1
        assert [key for key in old.scan_iter(match="it-*")] == []
        assert new.lrange("queue:default", 0, -1) == [queued.encode()]

    def test_a_jid_inside_args_does_not_take_another_job_s_state(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Only the job's own top-level `jid` names its state; the other job's stays on OLD."""
        old, new = old_redis.client(), new_redis.client()
        job = {"class": "ParentJob", "args": [{"jid": "0123456789abcdef01234567"}], "jid": "aa"}
        old.zadd("retry", {json.dumps(job, separators=(",", ":")): 1.0})
        old.hset("it-0123456789abcdef01234567", mapping=ITERABLE_STATE)
        result = run_cointoss(["migrate", "--json"], urls(old_redis, new_redis))
        assert result.returncode == 0, result.stderr
        assert new.zcard("retry") == 1 and not new.exists("it-0123456789abcdef01234567")
        assert old.hgetall("it-0123456789abcdef01234567")
