"""RQ's key names (2.x and 3.0). RQ 3.0 reads the first
part (`rq`) from RQ_KEY_PREFIX; every name here takes it as `prefix`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RqKeys:
    """Key names under one RQ prefix."""

    prefix: str = "rq"

    @property
    def queues(self) -> str:
        return f"{self.prefix}:queues"  # set of full queue keys, not bare names

    @property
    def queue_prefix(self) -> str:
        return f"{self.prefix}:queue:"

    @property
    def job_prefix(self) -> str:
        return f"{self.prefix}:job:"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"  # set of worker hash keys

    @property
    def cron_schedulers(self) -> str:
        return f"{self.prefix}:cron_schedulers"

    @property
    def rate_limit_keys(self) -> str:
        return f"{self.prefix}:rl-keys"  # 3.0: set of rate-limit names

    def queue(self, name: str) -> str:
        return self.queue_prefix + name

    def intermediate(self, name: str) -> str:
        return f"{self.queue_prefix}{name}:intermediate"  # dequeued, not yet started

    def registry(self, kind: str, name: str) -> str:
        """scheduled, deferred, wip, failed, finished, canceled, ready (3.0): zsets per queue."""
        return f"{self.prefix}:{kind}:{name}"

    def scheduler_lock(self, name: str) -> str:
        return f"{self.prefix}:scheduler-lock:{name}"

    def rate_limited(self, limit: str) -> str:
        return f"{self.prefix}:rl:{limit}:rate_limited"


SCHEDULED = "scheduled"
DEFERRED = "deferred"
WIP = "wip"
READY = "ready"
FAILED = "failed"
BUSY_STATE = b"busy"
MOVER_LOCK_TOKEN = "cointoss-migrate"  # our value in rq:scheduler-lock:<q> while we claim
MOVER_LOCK_TTL_S = 30  # renewed by each claim; a killed mover frees OLD's scheduler this fast
SCHEDULER_MARGIN_S = 60  # with OLD's scheduler live, only jobs due later than this move
