"""Sidekiq's key names; all take MIGRATION_KEY_PREFIX in front."""

from __future__ import annotations

QUEUES = "queues"  # set of queue names clients have pushed to
QUEUE_PREFIX = "queue:"  # list per queue; clients LPUSH, fetch BRPOPs
SCHEDULE = "schedule"  # zset of future jobs scored by float epoch seconds
RETRY = "retry"  # zset of failed jobs waiting for their next attempt
DEAD = "dead"  # zset of jobs out of retries; reported, never blocks draining
PRIVATE_QUEUE_MARK = "sq|"  # Sidekiq Pro super_fetch in-flight lists are queue:sq|<identity>|<q>
PROCESSES = "processes"  # set of process identities; each live one has a hash <identity>
HEARTBEAT_BUSY_FIELD = "busy"  # field of the <identity> hash: jobs running now
HEARTBEAT_QUIET_FIELD = "quiet"  # field of the <identity> hash: "true" once TSTP was received
HEARTBEAT_BEAT_FIELD = "beat"  # field of the <identity> hash: float epoch seconds of the last beat


def queue_key(prefix: str, name: str) -> str:
    """`queue:<name>` under the namespace prefix."""
    return f"{prefix}{QUEUE_PREFIX}{name}"
