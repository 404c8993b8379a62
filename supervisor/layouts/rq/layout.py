"""RQ's Layout class (the package docstring has the drain and move rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.layouts.base import Backlog, Consumer, Layout, Source, Unit, View
from supervisor.layouts.rq import keys as rk
from supervisor.layouts.rq import lua
from supervisor.layouts.rq.backlog import queue_names, read_backlog, read_workers, redis_now
from supervisor.layouts.rq.view import read_view

if TYPE_CHECKING:
    import redis


class RqLayout(Layout):
    """Ids in lists and sorted sets, each with a job hash that must travel with it."""

    name = "rq"
    title = "RQ"
    kinds = (rk.SCHEDULED, "queues", rk.FAILED)
    default_kinds = frozenset({rk.SCHEDULED})
    auto_kinds = frozenset({rk.SCHEDULED})
    units = (lua.RQ_LIST, lua.RQ_ZSET)

    def __init__(self, prefix: str = "rq") -> None:
        self.keys = rk.RqKeys(prefix)

    def read_backlog(self, client: redis.Redis) -> Backlog:
        return read_backlog(client, self.keys)

    def consumers(self, client: redis.Redis, now: float | None = None) -> list[Consumer]:
        return read_workers(client, self.keys)

    def sources(self, client: redis.Redis, kinds: list[str]) -> list[Source]:
        names, _complete = queue_names(client, self.keys)
        found: list[Source] = []
        for kind in kinds:
            for name in names:
                queue = self.keys.queue(name)
                if kind == "queues":
                    found.append(self._source(queue, "queue:" + name, lua.RQ_LIST, queue))
                    continue
                key = self.keys.registry(kind, name)
                lock: tuple[str, ...] = ()
                scheduler: tuple[str | int, ...] = ()
                if kind == rk.SCHEDULED:
                    lock = (self.keys.scheduler_lock(name),)
                    scheduler = (rk.MOVER_LOCK_TOKEN, rk.SCHEDULER_MARGIN_S, rk.MOVER_LOCK_TTL_S)
                found.append(
                    self._source(key, f"{kind}:{name}", lua.RQ_ZSET, queue, lock, scheduler)
                )
        return found

    def _source(
        self,
        key: str,
        label: str,
        unit: Unit,
        queue: str,
        lock: tuple[str, ...] = (),
        scheduler: tuple[str | int, ...] = (),
    ) -> Source:
        job_prefix = self.keys.job_prefix
        return Source(
            key,
            label,
            unit,
            queues=self.keys.queues,
            queue=queue,
            job_prefix=job_prefix,
            claim_keys=lock,
            claim_args=(self.keys.queues, queue, job_prefix, *scheduler),
        )

    def label(self, key: str) -> str:
        """`queue:default`, `scheduled:default`: RQ's prefix stays out of reports."""
        start = self.keys.prefix + ":"
        return key[len(start) :] if key.startswith(start) else key

    def read_view(self, client: redis.Redis, now: float) -> View:
        return read_view(client, self.keys, now)

    def refusals(self, client: redis.Redis) -> list[str]:
        """What stays on OLD however long `migrate --follow` runs, and why."""
        backlog = read_backlog(client, self.keys)
        reasons = {
            "intermediate": "in flight: popped by a worker on OLD, which finishes or fails it",
            rk.WIP: "running on OLD's workers: they finish or fail there",
            rk.DEFERRED: "waiting for parent jobs: they are released as queued jobs on the Redis"
            " where the parents finish, and move from there",
            rk.READY: "being released by RQ on OLD (transient)",
            "rate_limited": "held by a rate limiter on OLD, which releases them there",
        }
        lines = [
            f"{key} ({size}): {reasons[key.split(':', 1)[0]]}"
            for key, size in sorted(backlog.held.items())
            if size
        ]
        now = redis_now(client)
        for name in queue_names(client, self.keys)[0]:
            holder = client.get(self.keys.scheduler_lock(name))
            if holder is None or holder == rk.MOVER_LOCK_TOKEN.encode():
                continue
            due = client.zcount(
                self.keys.registry(rk.SCHEDULED, name), "-inf", now + rk.SCHEDULER_MARGIN_S
            )
            if due:
                lines.append(
                    f"{rk.SCHEDULED}:{name} ({due} due within {rk.SCHEDULER_MARGIN_S} s): OLD's"
                    " RQ scheduler holds the lock and enqueues them; they move as queued jobs"
                )
        return lines
