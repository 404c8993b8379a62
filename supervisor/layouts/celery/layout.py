"""Celery's Layout class (the package docstring has the drain and move rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.layouts import plain
from supervisor.layouts.base import Backlog, Consumer, Layout, Source, View
from supervisor.layouts.celery import keys as ck
from supervisor.layouts.celery import lua
from supervisor.layouts.celery.backlog import (
    queue_names,
    read_backlog,
    read_consumers,
    unacked_older_than,
)
from supervisor.layouts.celery.view import read_view

if TYPE_CHECKING:
    import redis


class CeleryLayout(Layout):
    """Self-contained JSON messages in per-priority lists; no registry of workers or runs."""

    name = "celery"
    title = "Celery"
    kinds = ("queues", ck.UNACKED)
    default_kinds = frozenset({"queues"})  # unacked only when asked: see refusals
    auto_kinds = frozenset[str]()  # nothing waits for a time in Redis
    units = (plain.LIST, lua.UNACKED)

    def __init__(
        self, prefix: str = "", *, visibility_timeout_s: float = 3600.0, acks_late: bool = False
    ) -> None:
        self.prefix = prefix
        self.visibility_timeout_s = visibility_timeout_s
        self.acks_late = acks_late

    def read_backlog(self, client: redis.Redis) -> Backlog:
        return read_backlog(client, self.prefix, acks_late=self.acks_late)

    def consumers(self, client: redis.Redis, now: float | None = None) -> list[Consumer]:
        return read_consumers(client)

    def sources(self, client: redis.Redis, kinds: list[str]) -> list[Source]:
        found = [self._unacked()] if ck.UNACKED in kinds else []
        if "queues" not in kinds:
            return found
        names, _complete = queue_names(client, self.prefix)
        return found + [
            Source(
                self.prefix + ck.priority_list(name, step),
                self.label(self.prefix + ck.priority_list(name, step)),
                plain.LIST,
                claim_args=("", ""),  # kombu keeps no set of queue names to register in
            )
            for name in names
            for step in ck.PRIORITY_STEPS
        ]

    def _unacked(self) -> Source:
        """Entries past the visibility timeout: those kombu itself would restore."""
        prefix, timeout = self.prefix, self.visibility_timeout_s
        return Source(
            prefix + ck.UNACKED,
            ck.UNACKED,
            lua.UNACKED,
            claim_keys=(prefix + ck.UNACKED_INDEX,),
            claim_args=(prefix, timeout, ck.SEP, ck.BINDING_PREFIX),
            count=lambda client: unacked_older_than(client, prefix, timeout),
        )

    def label(self, key: str) -> str:
        """`celery`, `celery (priority 9)`: the separator bytes stay out of reports."""
        bare = key[len(self.prefix) :] if self.prefix and key.startswith(self.prefix) else key
        queue, _sep, step = bare.partition(ck.SEP)
        return f"{queue} (priority {step})" if step else queue

    def read_view(self, client: redis.Redis, now: float) -> View:
        return read_view(self, client, now)

    def refusals(self, client: redis.Redis) -> list[str]:
        lines = []
        held = int(client.hlen(self.prefix + ck.UNACKED))
        if held:
            stale = unacked_older_than(client, self.prefix, self.visibility_timeout_s)
            lines.append(
                f"{ck.UNACKED} ({held}, {stale} past the visibility timeout"
                f" {self.visibility_timeout_s:g} s): reserved, prefetched or ETA/retry messages"
                " held by OLD's workers; moving them would run them twice. A warm shutdown"
                " (TERM) returns them to the queue; those past the timeout move with"
                " --only unacked once OLD's workers are gone"
            )
        if not self.acks_late:
            lines.append(
                "running tasks: invisible in Redis with early ack; they finish on OLD's workers"
            )
        return lines
