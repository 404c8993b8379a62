"""End to end: a supervised worker_app consuming OLD moves to NEW by itself once OLD has drained.

Jobs are `RecordJob`s, whose ledger (`worker_app:processed`, jid -> runs, on the Redis each job
was consumed from) proves that every job ran exactly once across the move.
"""

from __future__ import annotations

import datetime
import signal
import subprocess
import sys

from tests.conftest import child_env
from tests.supervise_support import supervise_env, wait_until

INTERVAL_S = 0.5
CONFIRMATIONS = 3
JITTER_S = 1.0
SEED_FOR_OLD = 0  # random.Random(0).random() = 0.84 > weight 0.01: the first toss picks OLD
BEFORE, DURING = 300, 300


def enqueue(producer_url: str, count: int) -> list[str]:
    """Pushes `count` RecordJobs with the real producer; returns their jids."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker_app.enqueue",
            "--class",
            "RecordJob",
            "--count",
            str(count),
            "--print-jids",
        ],
        env=child_env({"REDIS_PRODUCER_URL": producer_url}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    jids = [
        line.strip()
        for line in result.stdout.splitlines()
        if line.strip() and not line.startswith("{")
    ]
    assert len(jids) == count, result.stdout
    return jids


def ledger(server) -> dict[str, int]:
    raw = server.client().hgetall("worker_app:processed")
    return {jid.decode(): int(count) for jid, count in raw.items()}


def when(event: dict) -> float:
    return datetime.datetime.fromisoformat(event["timestamp"]).timestamp()


def test_supervised_worker_app_converges_to_new_and_runs_every_job_once(
    supervised, old_redis, new_redis
):
    """OLD's backlog runs on OLD, the move happens after K drained checks (+ jitter), NEW's jobs run on NEW: each exactly once."""
    on_old = enqueue(old_redis.url, BEFORE)
    env = supervise_env(
        {
            "MIGRATION_OLD_REDIS_URL": old_redis.url,
            "MIGRATION_NEW_REDIS_URL": new_redis.url,
            "MIGRATION_NEW_WEIGHT": "0.01",
            "MIGRATION_SEED": str(SEED_FOR_OLD),
            "MIGRATION_DRAIN_CHECK_INTERVAL": str(INTERVAL_S),
            "MIGRATION_DRAIN_CONFIRMATIONS": str(CONFIRMATIONS),
            "MIGRATION_DRAIN_JITTER": str(JITTER_S),
            "MIGRATION_STOP_TIMEOUT": "15",
            "WORKER_CONCURRENCY": "5",
            "WORKER_SHUTDOWN_TIMEOUT": "10",
            "WORKER_HEARTBEAT_INTERVAL": "0.5",
            "WORKER_POLL_INTERVAL": "0.5",
        }
    )
    sup = supervised([sys.executable, "-m", "worker_app"], env)
    (first,) = sup.wait_event("redis_selected")
    assert (first["side"], first["reason"]) == ("old", "coin")
    on_new = enqueue(new_redis.url, DURING)  # producers already write to NEW only

    moved = sup.wait_event("worker_restarting", timeout=120)[0]
    assert moved["reason"] == "old_drained"
    wait_until(
        lambda: len(ledger(old_redis)) + len(ledger(new_redis)) >= BEFORE + DURING,
        timeout=120,
        what="every job in a ledger",
    )
    sup.send(signal.SIGTERM)
    assert sup.wait() == 0

    old_ledger, new_ledger = ledger(old_redis), ledger(new_redis)
    assert set(old_ledger) == set(on_old)  # everything queued on OLD ran there, before the move
    assert set(new_ledger) == set(on_new)
    assert set(old_ledger.values()) == {1} and set(new_ledger.values()) == {1}

    selected = sup.events("redis_selected")
    assert [(e["side"], e["reason"]) for e in selected] == [("old", "coin"), ("new", "old_drained")]
    checks = sup.events("drain_check")
    first_drained = next(i for i, c in enumerate(checks) if c["drained"])
    counts = [c["consecutive"] for c in checks[first_drained:]]
    # K in a row, and more while the checks have not yet seen worker_app beat twice (its `busy`
    # lags a beat behind): heartbeats.QuietSpan
    assert counts == list(range(1, len(counts) + 1)) and len(counts) >= CONFIRMATIONS
    took = when(moved) - when(checks[first_drained])
    bound = (CONFIRMATIONS - 1) * INTERVAL_S + JITTER_S
    print(
        f"moved {took:.2f} s after the first drained check (K x interval + jitter bound {bound + INTERVAL_S:.1f} s)"
    )
    assert took <= bound + 10  # liveness only: generous slack for a shared machine
