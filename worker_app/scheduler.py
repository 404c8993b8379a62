"""The poller: due members of `retry` and `schedule` move to their queues, one atomic step each.

Sidekiq OSS pops a member in one round trip and pushes it in another (a crash in between loses
it); here the claim (ZREM) and the push (SADD + LPUSH) run in one Lua script. The new payload is
built in Python (`enqueued_at` refreshed, Ruby's key order kept), never re-serialised by Lua.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Protocol, cast

import redis

from worker_app import keys, lua
from worker_app.jobs import JobFormatError, dump_job, load_job, normalize, now

SETS = (keys.RETRY, keys.SCHEDULE)  # Sidekiq's order
BATCH = 100
INITIAL_WAIT_S = 10.0  # Sidekiq's INITIAL_WAIT when the poll interval is not set
DEFAULT_AVERAGE_S = 5.0  # Sidekiq's average_scheduled_poll_interval


def poll_delay(average: float, process_count: int) -> float:
    """Sidekiq's randomised sleep: uniform in [avg/2, 3avg/2), or [0, avg) with 10+ processes."""
    if process_count < 10:
        return average * random.random() + average / 2
    return average * random.random()


class Flag(Protocol):
    """Anything with `is_set()`: one event, or the worker's "quiet or stopping" pair."""

    def is_set(self) -> bool: ...


class Poller:
    def __init__(self, client: redis.Redis, poll_interval: float | None, log: Any) -> None:
        self.redis = client
        self.poll_interval = poll_interval
        self.log = log
        self._enqueue = client.register_script(lua.ENQUEUE_DUE)
        self._settle = client.register_script(lua.SETTLE)
        self._average: float | None = poll_interval

    def enqueue_due(self, stop: threading.Event | None = None) -> int:
        """Moves every member due now; returns how many went to a queue."""
        moved = 0
        for zset in SETS:
            while stop is None or not stop.is_set():
                members = cast(
                    list[bytes],
                    self.redis.zrangebyscore(zset, "-inf", repr(now()), start=0, num=BATCH),
                )
                for member in members:
                    moved += self._move(zset, member)
                if len(members) < BATCH:
                    break
        return moved

    def _move(self, zset: str, member: bytes) -> int:
        try:
            job = normalize(load_job(member))
        except JobFormatError as exc:
            self._bury(zset, member, str(exc))
            return 0
        queue = job["queue"]
        job["enqueued_at"] = now()
        return int(
            self._enqueue(
                keys=[zset, keys.queue_key(queue), keys.QUEUES],
                args=[member, dump_job(job), queue],
            )
        )

    def _bury(self, zset: str, member: bytes, reason: str) -> None:
        """A member that is not a job would be lost by Sidekiq; it goes to `dead` as it is."""
        at = now()
        if self._settle(
            keys=[zset, keys.DEAD],
            args=[
                "zset",
                member,
                repr(at),
                member,
                "1",
                repr(at - keys.DEAD_TIMEOUT_S),
                keys.DEAD_MAX_JOBS,
            ],
        ):
            self.log.error("malformed_job_dead", source=zset, reason=reason, bytes=len(member))

    def next_delay(self) -> float:
        """Sidekiq 6.4: the average is `5 s x processes`, computed once; WORKER_POLL_INTERVAL wins."""
        if self._average is None:
            self._average = DEFAULT_AVERAGE_S * max(int(self.redis.scard(keys.PROCESSES)), 1)
        count = 1 if self.poll_interval is not None else int(self._average / DEFAULT_AVERAGE_S)
        return poll_delay(self._average, count)

    def initial_wait(self) -> float:
        """Sidekiq waits 10 s + rand(5) at boot; with an explicit interval, one random interval."""
        if self.poll_interval is not None:
            return poll_delay(self.poll_interval, 1)
        return INITIAL_WAIT_S + random.random() * 5

    def run(self, stop: threading.Event, paused: Flag, on_error: Any) -> None:
        if stop.wait(self.initial_wait()):
            return
        while True:
            if not paused.is_set():
                try:
                    self.enqueue_due(stop)
                    delay = self.next_delay()
                except redis.RedisError as exc:
                    delay = on_error(exc)
            else:
                delay = 1.0
            if stop.wait(delay):
                return
