"""Convergence with real Redis servers: a worker on OLD moves to NEW once OLD has stayed drained.

The worker here is the signal recorder, which notes the REDIS_URL each life was given; the
end-to-end run with worker_app and its job ledger is in test_supervise_worker_app.py.
"""

from __future__ import annotations

import random
import signal
import time
import uuid

from tests.supervise_support import recorder, starts, supervise_env, wait_until

INTERVAL_S = 0.3
CONFIRMATIONS = 3
JITTER_S = 0.5
SEED_FOR_OLD = 0  # random.Random(0).random() = 0.84 > weight 0.01: the first toss picks OLD
assert random.Random(SEED_FOR_OLD).random() > 0.01


def convergence_env(old_url: str, new_url: str, **extra: str) -> dict[str, str]:
    return supervise_env(
        {
            "MIGRATION_OLD_REDIS_URL": old_url,
            "MIGRATION_NEW_REDIS_URL": new_url,
            "MIGRATION_NEW_WEIGHT": "0.01",
            "MIGRATION_SEED": str(SEED_FOR_OLD),
            "MIGRATION_DRAIN_CHECK_INTERVAL": str(INTERVAL_S),
            "MIGRATION_DRAIN_CONFIRMATIONS": str(CONFIRMATIONS),
            "MIGRATION_DRAIN_JITTER": str(JITTER_S),
            "MIGRATION_STOP_TIMEOUT": "10",
            **extra,
        }
    )


def seed_backlog(client) -> None:
    client.sadd("queues", "default")
    client.lpush("queue:default", '{"class":"NoopJob","jid":"a1","args":[]}')


def test_worker_on_old_moves_to_new_after_k_drained_checks(
    supervised, tmp_path, redis_factory, new_redis
):
    """Backlog: the worker stays on OLD. Emptied: after exactly K drained checks (+ jitter) it restarts on NEW."""
    secret = f"pw-{uuid.uuid4().hex}"
    old = redis_factory(password=secret).start()
    seed_backlog(old.client())
    start_file, record = tmp_path / "starts", tmp_path / "signals"
    env = convergence_env(old.url, new_redis.url)
    sup = supervised(recorder(record, "--starts", str(start_file)), env)
    (first,) = wait_until(lambda: starts(start_file), what="the first life")
    assert (first["choice"], first["redis_url"]) == ("old", old.url)
    assert first["producer_url"] == new_redis.url  # exec's environment rules: producers on NEW
    assert first["source_vars"] == []  # neither MIGRATION_*_REDIS_URL reaches the worker
    sup.wait_event("drain_check", 2)
    assert all(not check["drained"] for check in sup.events("drain_check"))
    checks_before = len(sup.events("drain_check"))
    old.client().delete("queue:default")
    second = wait_until(lambda: len(starts(start_file)) == 2 and starts(start_file)[1])
    assert (second["choice"], second["redis_url"]) == ("new", new_redis.url)
    assert record.read_text().split() == ["SIGTERM"]  # the OLD life was asked to stop, gracefully
    all_checks = sup.events("drain_check")
    checks = all_checks[checks_before:]
    drained_run = [c for c in checks if c["drained"]]
    assert [c["consecutive"] for c in drained_run] == [1, 2, 3]
    (confirmed,) = sup.events("old_drained")
    assert 0 <= confirmed["delay_s"] <= JITTER_S
    selected = sup.events("redis_selected")
    assert [(e["side"], e["reason"]) for e in selected] == [("old", "coin"), ("new", "old_drained")]
    assert sup.events("worker_restarting")[0]["reason"] == "old_drained"
    sup.send(signal.SIGTERM)
    assert sup.wait() == 0
    assert len(sup.events("drain_check")) == len(all_checks)  # on NEW nothing watches OLD any more
    assert secret not in sup.output()


def test_unreachable_old_never_counts_as_drained(supervised, tmp_path, redis_factory, new_redis):
    """When OLD stops answering, checks fail and the worker stays where it is."""
    old = redis_factory().start()
    seed_backlog(old.client())
    start_file = tmp_path / "starts"
    sup = supervised(
        recorder(tmp_path / "signals", "--starts", str(start_file)),
        convergence_env(old.url, new_redis.url),
    )
    wait_until(lambda: starts(start_file), what="the first life")
    sup.wait_event("drain_check")
    old.stop()
    failed = sup.wait_event("drain_check_failed", CONFIRMATIONS + 2)
    assert all(f["error"] for f in failed)
    assert all(c["consecutive"] == 0 for c in sup.events("drain_check"))
    assert sup.events("worker_restarting") == [] and len(starts(start_file)) == 1


def test_stop_during_the_jitter_pause_does_not_start_a_new_life(
    supervised, tmp_path, old_redis, new_redis
):
    """TERM after OLD was confirmed drained but before the move: the supervisor just stops."""
    seed_backlog(old_redis.client())
    start_file = tmp_path / "starts"
    env = convergence_env(old_redis.url, new_redis.url, MIGRATION_DRAIN_JITTER="30")
    sup = supervised(
        recorder(tmp_path / "signals", "--starts", str(start_file), "--exit-code", "4"), env
    )
    wait_until(lambda: starts(start_file), what="the first life")
    old_redis.client().delete("queue:default")
    sup.wait_event("old_drained")
    sup.send(signal.SIGTERM)
    assert sup.wait() == 4
    assert len(starts(start_file)) == 1 and sup.events("worker_restarting") == []


def test_worker_on_new_never_watches_old(supervised, tmp_path, old_redis, new_redis):
    """A worker that tossed NEW has nothing to converge: no drain checks at all."""
    seed_backlog(old_redis.client())
    start_file = tmp_path / "starts"
    env = convergence_env(old_redis.url, new_redis.url, MIGRATION_NEW_WEIGHT="0.99")
    sup = supervised(recorder(tmp_path / "signals", "--starts", str(start_file)), env)
    (first,) = wait_until(lambda: starts(start_file), what="the first life")
    assert first["choice"] == "new"
    time.sleep(INTERVAL_S * 4)
    assert sup.events("drain_check") == [] and sup.events("drain_check_failed") == []
