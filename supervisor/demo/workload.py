"""The demo's jobs: a backlog seeded on OLD, a producer on NEW, and the ledgers that count them.

Every job is a worker_app `RecordJob`, so the `worker_app:processed` ledger on each Redis says
which jobs ran where, and how often.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker_app.keys import LEDGER

SCHEDULED_SHARE = 0.15
RETRY_SHARE = 0.15
DUE_IN_S = (10.0, 25.0)  # scheduled/retry come due this long after seeding...
DUE_LATER_PER_JOB_S = 1 / 800  # ...plus this per job: after the queues drain, so the mover has work
PRODUCE_S = 15.0  # the producer spreads its jobs over this long
PRODUCE_EVERY_S = 0.25


@dataclass(frozen=True)
class SeededBacklog:
    """What OLD was given: every jid, and how many went to each place."""

    jids: tuple[str, ...]
    queued: int
    scheduled: int
    retry: int


def seed_backlog(url: str, jobs: int, queues: tuple[str, ...], rng: random.Random) -> SeededBacklog:
    """A backlog as a real OLD has one: mostly queued, some scheduled, some waiting to retry."""
    from worker_app.client import Client

    client = Client(url)
    scheduled = int(jobs * SCHEDULED_SHARE)
    retry = int(jobs * RETRY_SHARE)
    queued = jobs - scheduled - retry
    jids: list[str] = []
    for queue, share in _shares(queued, queues):
        jids += client.push_bulk("RecordJob", [[]] * share, queue=queue)
    start = time.time() + jobs * DUE_LATER_PER_JOB_S
    for at, count in Counter(_due_times(scheduled, start, rng)).items():
        jids += client.push_bulk("RecordJob", [[]] * count, queue=queues[-1], at=at)
    jids += _seed_retries(client, _due_times(retry, start, rng), queues[-1])
    return SeededBacklog(tuple(jids), queued, scheduled, retry)


def produce(
    url: str,
    jobs: int,
    queues: tuple[str, ...],
    stop: threading.Event,
    pushed: Callable[[list[str]], None],
) -> bool:
    """Producers point at NEW from the start: new work only ever lands there.

    Spreads `jobs` over PRODUCE_S; returns False when `stop` cut it short.
    """
    from worker_app.client import Client

    client = Client(url)
    batches = int(PRODUCE_S / PRODUCE_EVERY_S)
    for index in range(batches):
        if stop.is_set():
            return False
        count = jobs * (index + 1) // batches - jobs * index // batches
        queue = queues[index % len(queues)]
        pushed(client.push_bulk("RecordJob", [[]] * count, queue=queue))
        stop.wait(PRODUCE_EVERY_S)
    return True


def ledger_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def read_ledger(url: str) -> dict[str, int]:
    """jid -> how many times it ran on that Redis."""
    raw = ledger_client(url).hgetall(LEDGER)
    return {jid.decode(): int(count) for jid, count in raw.items()}


def _shares(total: int, queues: tuple[str, ...]) -> list[tuple[str, int]]:
    return [
        (q, total * (i + 1) // len(queues) - total * i // len(queues)) for i, q in enumerate(queues)
    ]


def _due_times(count: int, start: float, rng: random.Random) -> list[float]:
    """Spread over DUE_IN_S after `start`, on a 0.1 s grid so jobs due together go together."""
    return [round(start + rng.uniform(*DUE_IN_S), 1) for _ in range(count)]


def _seed_retries(client: Any, due: list[float], queue: str) -> list[str]:
    """Jobs that failed once on OLD, written by worker_app's own failure path (so the payload is
    exactly what a worker puts in `retry`), due when the demo wants them rather than in 15-24 s.
    """
    from worker_app import keys
    from worker_app.jobs import build_job
    from worker_app.retries import Failure, on_failure

    jids, members = [], {}
    for at in due:
        job = build_job("RecordJob", [], queue=queue)
        failure = Failure("RuntimeError", "seeded by cointoss demo")
        members[on_failure(job, failure, queue, time.time()).payload] = at
        jids.append(job["jid"])
    if members:
        client.redis.zadd(keys.RETRY, members)
    return jids
