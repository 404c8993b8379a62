"""The producer: pushes jobs in Sidekiq's exact format, as `Sidekiq::Client` does.

client = Client("redis://localhost:6379/0")
jid = client.push("RecordJob", [1, "two"])                 # now, queue "default"
jid = client.push("SleepJob", [2], queue="low", delay=30)  # in 30 s (or at=<epoch s>)
jids = client.push_bulk("NoopJob", [[i] for i in range(10_000)])  # pipelined
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import redis

from worker_app import keys
from worker_app.connection import connect
from worker_app.jobs import Job, build_job, dump_job, now

BULK_BATCH = 1000  # jobs per LPUSH / ZADD, as Sidekiq's push_bulk batches


class Client:
    """Pushes to one Redis; takes a URL or an existing redis-py client."""

    def __init__(self, target: str | redis.Redis) -> None:
        self.redis = connect(target) if isinstance(target, str) else target

    def push(
        self,
        job_class: str,
        args: Sequence[Any] = (),
        *,
        queue: str = "default",
        at: float | None = None,
        delay: float | None = None,
        retry: bool | int = True,
    ) -> str:
        """Pushes one job and returns its jid; `at`/`delay` in the future schedule it."""
        return self.push_bulk(job_class, [args], queue=queue, at=at, delay=delay, retry=retry)[0]

    def push_bulk(
        self,
        job_class: str,
        args_list: Iterable[Sequence[Any]],
        *,
        queue: str = "default",
        at: float | None = None,
        delay: float | None = None,
        retry: bool | int = True,
    ) -> list[str]:
        """Pushes one job per args list in pipelined batches; returns the jids in order."""
        run_at = _run_at(at, delay)
        scheduled = run_at is not None
        created = now()
        jobs = [
            build_job(
                job_class,
                list(args),
                queue=queue,
                retry=retry,
                scheduled=scheduled,
                created_at=created,
            )
            for args in args_list
        ]
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, len(jobs), BULK_BATCH):
            batch = jobs[start : start + BULK_BATCH]
            if run_at is not None:
                pipe.zadd(keys.SCHEDULE, {dump_job(job): run_at for job in batch})
            else:
                enqueue(pipe, queue, batch)
        pipe.execute()
        return [job["jid"] for job in jobs]


def enqueue(pipe: Any, queue: str, jobs: list[Job]) -> None:
    """SADD `queues` + LPUSH, with `enqueued_at` stamped now (first pushed is first popped)."""
    stamp = now()
    payloads = []
    for job in jobs:
        job["enqueued_at"] = stamp
        payloads.append(dump_job(job))
    pipe.sadd(keys.QUEUES, queue)
    pipe.lpush(keys.queue_key(queue), *payloads)


def _run_at(at: float | None, delay: float | None) -> float | None:
    """Like `perform_in`/`perform_at`: a time not in the future means push now."""
    if at is not None and delay is not None:
        raise ValueError("give either at or delay, not both")
    when = at if at is not None else (now() + delay if delay is not None else None)
    return when if when is not None and when > now() else None
