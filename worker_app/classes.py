"""The sample job classes, named as a Ruby app names them (tests/ruby/jobs.rb has the twins).

A job class subclasses `BaseJob`, implements `perform(*args)` and is registered by name with
`@register`; `WORKER_IMPORT=pkg.module` makes the worker import more modules that register theirs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis

from worker_app import keys
from worker_app.client import Client
from worker_app.jobs import Job


@dataclass
class JobContext:
    """What a running job may use: its payload, the Redis it came from, and the producer."""

    job: Job
    queue: str
    redis: redis.Redis
    producer_url: str
    _producer: Client | None = field(default=None, repr=False)

    @property
    def jid(self) -> str:
        return str(self.job.get("jid", ""))

    @property
    def producer(self) -> Client:
        """Pushes to REDIS_PRODUCER_URL (NEW during a migration), not to the consumed Redis."""
        if self._producer is None:
            self._producer = Client(self.producer_url)
        return self._producer


class BaseJob:
    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    def perform(self, *args: Any) -> None:
        raise NotImplementedError


REGISTRY: dict[str, type[BaseJob]] = {}


C = TypeVar("C", bound=type[BaseJob])


def register(cls: C) -> C:
    REGISTRY[cls.__name__] = cls
    return cls


@register
class NoopJob(BaseJob):
    def perform(self, *args: Any) -> None:
        return None


@register
class SleepJob(BaseJob):
    def perform(self, seconds: float = 1.0, *args: Any) -> None:
        time.sleep(float(seconds))


@register
class FailJob(BaseJob):
    """Fails its first `times` runs; the run count lives in Redis so Ruby's twin agrees."""

    def perform(self, times: int = 1, *args: Any) -> None:
        key = keys.ATTEMPTS_PREFIX + self.ctx.jid
        pipe = self.ctx.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, keys.ATTEMPTS_TTL_S)
        attempt = int(pipe.execute()[0])
        if attempt <= int(times):
            raise RuntimeError(f"FailJob failure {attempt} of {times}")


@register
class RecordJob(BaseJob):
    """The ledger: every run adds 1 to its jid's count on the Redis it was consumed from."""

    def perform(self, *args: Any) -> None:
        self.ctx.redis.hincrby(keys.LEDGER, self.ctx.jid, 1)


@register
class SpawnJob(BaseJob):
    """Pushes `n` RecordJobs through the producer URL: jobs that create jobs, as in real apps."""

    def perform(self, n: int = 1, *args: Any) -> None:
        self.ctx.producer.push_bulk("RecordJob", [[self.ctx.jid, i] for i in range(int(n))])
