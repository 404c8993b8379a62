"""Sidekiq's Layout class: what the interface asks, from the modules beside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.layouts import plain
from supervisor.layouts.base import Backlog, Consumer, Layout, Source, View
from supervisor.layouts.sidekiq import keys as sk
from supervisor.layouts.sidekiq.backlog import queue_names, read_backlog, read_processes
from supervisor.layouts.sidekiq.view import read_view

if TYPE_CHECKING:
    import redis


class SidekiqLayout(Layout):
    """Jobs are self-contained JSON members: each moves alone, with Sidekiq's own claims."""

    name = "sidekiq"
    title = "Sidekiq"
    kinds = (sk.SCHEDULE, sk.RETRY, sk.DEAD, "queues")
    default_kinds = frozenset({sk.SCHEDULE, sk.RETRY})
    auto_kinds = frozenset({sk.SCHEDULE, sk.RETRY})
    units = (plain.ZSET, plain.LIST)

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix  # MIGRATION_KEY_PREFIX: a redis-namespace such as `myapp:`

    def read_backlog(self, client: redis.Redis) -> Backlog:
        return read_backlog(client, self.prefix)

    def consumers(self, client: redis.Redis, now: float | None = None) -> list[Consumer]:
        return read_processes(client, self.prefix, now)

    def sources(self, client: redis.Redis, kinds: list[str]) -> list[Source]:
        """Queue lists are looked up afresh each time; Sidekiq Pro's private `queue:sq|*`
        lists belong to live processes and never move."""
        found: list[Source] = []
        for kind in kinds:
            if kind != "queues":
                found.append(
                    Source(self.prefix + kind, kind, plain.ZSET, claim_args=(self.prefix,))
                )
                continue
            names, _complete = queue_names(client, self.prefix)
            queues = self.prefix + sk.QUEUES
            found += [
                Source(
                    sk.queue_key(self.prefix, name),
                    sk.QUEUE_PREFIX + name,
                    plain.LIST,
                    queues=queues,
                    queue=name,
                    claim_args=(queues, name, self.prefix),  # the prefix: iterable states
                )
                for name in names
                if not name.startswith(sk.PRIVATE_QUEUE_MARK)
            ]
        return found

    def label(self, key: str) -> str:
        """Without the namespace, as Sidekiq's own tools name keys."""
        return key[len(self.prefix) :] if self.prefix and key.startswith(self.prefix) else key

    def read_view(self, client: redis.Redis, now: float) -> View:
        return read_view(client, self.prefix, now)
