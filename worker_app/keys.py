"""Every Redis key name worker_app reads or writes: Sidekiq's, plus its in-flight lists."""

from __future__ import annotations

QUEUES = "queues"  # set of bare queue names; clients SADD on every immediate push
SCHEDULE = "schedule"  # zset: future jobs scored by float epoch seconds
RETRY = "retry"  # zset: failed jobs scored by their next attempt
DEAD = "dead"  # zset: jobs out of retries, scored by when they died
PROCESSES = "processes"  # set of live process identities
STAT_PROCESSED = "stat:processed"
STAT_FAILED = "stat:failed"
STATS_TTL_S = 5 * 365 * 24 * 3600  # Sidekiq keeps the daily stat keys for five years
HEARTBEAT_TTL_S = 60

# Reliable fetch: the jobs a process holds, one list per (process, queue), named as Sidekiq Pro's
# super_fetch names them so that every `queue:*` scan (drain checks, dashboards) counts them.
INFLIGHT_PREFIX = "queue:sq|"
RECOVERY_LOCK = "worker_app:recovery_lock"  # one orphan recoverer at a time across the fleet

LEDGER = "worker_app:processed"  # RecordJob: HINCRBY <jid> 1, the proof of exactly-once
ATTEMPTS_PREFIX = "worker_app:attempts:"  # FailJob: runs so far, per jid
ATTEMPTS_TTL_S = 7 * 24 * 3600

DEAD_TIMEOUT_S = 180 * 24 * 3600
DEAD_MAX_JOBS = 10_000


def queue_key(name: str) -> str:
    return f"queue:{name}"


def inflight_key(identity: str, queue: str) -> str:
    return f"{INFLIGHT_PREFIX}{identity}|{queue}"


def parse_inflight_key(key: str) -> tuple[str, str] | None:
    """(identity, queue) of an in-flight list; identities never hold `|`, queue names may."""
    rest = key[len(INFLIGHT_PREFIX) :] if key.startswith(INFLIGHT_PREFIX) else ""
    identity, sep, queue = rest.partition("|")
    return (identity, queue) if sep and identity and queue else None


def work_keys(identity: str) -> tuple[str, str]:
    """`<identity>:work` (Sidekiq >= 6.4.2) and `<identity>:workers` (<= 6.4.1, Debian's)."""
    return f"{identity}:work", f"{identity}:workers"


def signals_key(identity: str) -> str:
    return f"{identity}-signals"


def daily(stat: str, date: str) -> str:
    return f"{stat}:{date}"
