"""Auto-migrate with real Redis servers: three supervisors, one lock, every scheduled job moved once."""

from __future__ import annotations

import datetime
import itertools
import json
import signal
import time

import pytest

from supervisor.layouts.base import Backlog
from supervisor.supervision.automigrate import wanted
from tests.supervise_support import recorder, starts, supervise_env, wait_until

SCHEDULED, RETRIES = 3000, 1000
LOCK = "cointoss:automigrate:lock"


@pytest.mark.parametrize(
    ("backlog", "expected"),
    [
        (Backlog(waiting={"schedule": 5}), True),
        (Backlog(waiting={"retry": 1}), True),
        (
            Backlog(waiting={"schedule": 5, "retry": 2}, busy=3),
            True,
        ),  # the mover is safe next to running jobs
        (Backlog(), False),  # nothing to move
        (
            Backlog(waiting={"schedule": 5}, queues={"default": 1}),
            False,
        ),  # queues first: workers drain them
        (
            Backlog(waiting={"retry": 1}, queues={"sq|host:1|default": 2}),
            False,
        ),  # jobs in flight count as queued
        (
            Backlog(waiting={"schedule": 5}, complete=False),
            False,
        ),  # an incomplete look never triggers
        (Backlog(terminal={"dead": 9}), False),  # dead jobs are not moved automatically
        (Backlog(moving=4, moving_batches=1), True),  # a killed mover's journal: replay it
    ],
)
def test_auto_migrate_is_wanted_only_when_only_schedule_or_retry_is_left(backlog, expected):
    """The trigger: queues empty and schedule/retry not."""
    assert wanted(backlog) is expected


def job(jid: str, at: float) -> str:
    return json.dumps({"class": "RecordJob", "jid": jid, "args": [], "queue": "default", "at": at})


def when(event: dict) -> float:
    return datetime.datetime.fromisoformat(event["timestamp"]).timestamp()


def automigrate_env(old_url: str, new_url: str) -> dict[str, str]:
    return supervise_env(
        {
            "MIGRATION_OLD_REDIS_URL": old_url,
            "MIGRATION_NEW_REDIS_URL": new_url,
            "MIGRATION_NEW_WEIGHT": "0.01",
            "MIGRATION_SEED": "0",  # draw 0.84: every supervisor's worker starts on OLD
            "MIGRATION_AUTO_MIGRATE": "true",
            "MIGRATION_DRAIN_CHECK_INTERVAL": "0.2",
            "MIGRATION_DRAIN_CONFIRMATIONS": "3",
            "MIGRATION_DRAIN_JITTER": "0.5",
        }
    )


def seed_leftovers(old) -> tuple[dict[str, float], dict[str, float]]:
    """Scheduled and retry jobs due in an hour: only the mover can take them off OLD."""
    later = time.time() + 3600
    schedule = {job(f"s{i}", later): later + i for i in range(SCHEDULED)}
    retry = {job(f"r{i}", later): later + i for i in range(RETRIES)}
    old.zadd("schedule", schedule)
    old.zadd("retry", retry)
    return schedule, retry


def test_three_supervisors_move_every_scheduled_job_exactly_once(
    supervised, tmp_path, old_redis, new_redis
):
    """One supervisor at a time holds the lock; the reports add up to each job once; then all three converge."""
    old = old_redis.client()
    schedule, retry = seed_leftovers(old)
    # Held until every worker is seen on OLD: on a loaded machine the first supervisor could
    # otherwise move everything before the third starts, whose toss then finds OLD drained.
    old.set(LOCK, "test", px=120_000)
    env = automigrate_env(old_redis.url, new_redis.url)
    fleet = []
    for n in range(3):
        start_file = tmp_path / f"starts-{n}"
        fleet.append(
            (
                supervised(recorder(tmp_path / f"signals-{n}", "--starts", str(start_file)), env),
                start_file,
            )
        )
    for _sup, start_file in fleet:
        (first,) = wait_until(lambda f=start_file: starts(f), what="each worker on OLD")
        assert first["choice"] == "old"
    old.delete(LOCK)

    for sup, start_file in fleet:  # every worker ends on NEW once OLD is drained
        wait_until(lambda f=start_file: len(starts(f)) == 2, timeout=120, what="each worker on NEW")
        assert starts(start_file)[1]["choice"] == "new"
        assert sup.events("worker_restarting")[0]["reason"] == "old_drained"

    new = new_redis.client()
    assert {m.decode(): s for m, s in new.zrange("schedule", 0, -1, withscores=True)} == schedule
    assert {m.decode(): s for m, s in new.zrange("retry", 0, -1, withscores=True)} == retry
    assert old.zcard("schedule") == old.zcard("retry") == 0
    runs = [e for sup, _ in fleet for e in sup.events("auto_migrate_done")]
    assert sum(e["total"] for e in runs) == SCHEDULED + RETRIES  # each job applied once in total
    holds = sorted(
        (when(start), when(done))
        for sup, _ in fleet
        for start, done in zip(
            sup.events("auto_migrate_started"), sup.events("auto_migrate_done"), strict=True
        )
    )
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(holds))
    assert old.exists(LOCK) == 0  # released by its owner
    for sup, _ in fleet:
        sup.send(signal.SIGTERM)
        assert sup.wait() == 0


def test_no_supervisor_moves_while_the_lock_is_held(supervised, tmp_path, old_redis, new_redis):
    """A lock held by someone else (another supervisor, an operator) keeps every supervisor off; released, one moves."""
    old = old_redis.client()
    seed_leftovers(old)
    old.set(LOCK, "operator", px=60_000)
    env = automigrate_env(old_redis.url, new_redis.url)
    fleet = [supervised(recorder(tmp_path / f"signals-{n}"), env) for n in range(2)]
    for sup in fleet:
        sup.wait_event("auto_migrate_skipped", 2)
    assert old.zcard("schedule") == SCHEDULED and new_redis.client().zcard("schedule") == 0
    assert old.get(LOCK) == b"operator"  # nobody else's release removed it
    old.delete(LOCK)
    wait_until(
        lambda: old.zcard("schedule") == 0 == old.zcard("retry"), what="the move after release"
    )
    assert new_redis.client().zcard("schedule") == SCHEDULED
