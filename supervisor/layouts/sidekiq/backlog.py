"""Reads what is left on a Sidekiq Redis, and judges whether it is drained.

DESIGN's definition: drained when every `queue:*` list, `schedule` and `retry` are empty and no
live Sidekiq process is busy (a ghost heartbeat, see heartbeats.py, is not a live process). `dead` is reported but never blocks draining. Jobs a mover has
claimed but not yet acknowledged (a journal on OLD, left by a killed `cointoss migrate`) block it
too: they are on neither side's lists, and retiring OLD then would lose them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from supervisor import constants as k
from supervisor.layouts.sidekiq.heartbeats import Heartbeat, alive, read_heartbeats

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True)
class Backlog:
    """One look at a Redis's Sidekiq keys; `complete` is False when a scan was cut short."""

    queues: dict[str, int] = field(default_factory=dict)
    schedule: int = 0
    retry: int = 0
    dead: int = 0
    live_processes: int = 0
    busy: int = 0
    complete: bool = True
    wrong_type: tuple[str, ...] = ()  # keys that hold another type: never "drained" past them
    moving: int = 0  # jobs in journals: claimed from OLD by a mover, not yet acknowledged
    moving_batches: int = 0  # journals; `cointoss migrate` replays them
    heartbeats: tuple[Heartbeat, ...] = ()  # the live processes, for QuietSpan

    @property
    def queued(self) -> int:
        return sum(self.queues.values())

    @property
    def drained(self) -> bool:
        return (
            self.complete
            and self.queued == 0
            and self.schedule == 0
            and self.retry == 0
            and self.busy == 0
            and self.moving_batches == 0
        )


def queue_names(client: redis.Redis, prefix: str) -> tuple[list[str], bool]:
    """Members of `queues` plus every `queue:*` key a bounded SCAN finds; False if cut short."""
    names = {_text(name) for name in client.smembers(prefix + k.QUEUES)}
    keys, complete = scan_keys(client, prefix + k.QUEUE_PREFIX)
    names.update(key[len(prefix + k.QUEUE_PREFIX) :] for key in keys)
    return sorted(names), complete


def scan_keys(client: redis.Redis, start: str) -> tuple[list[str], bool]:
    """Every key beginning with `start`, by a bounded SCAN; False if it was cut short."""
    pattern = _escape_glob(start) + "*"
    found: set[str] = set()
    cursor, calls = 0, 0
    while True:
        cursor, keys = client.scan(cursor, match=pattern, count=k.SCAN_BATCH)
        found.update(_text(key) for key in keys)
        calls += 1
        if cursor == 0:
            return sorted(found), True
        if calls >= k.SCAN_MAX_CALLS:
            return sorted(found), False


@dataclass(frozen=True)
class ProcessInfo:
    """One live consumer process (its heartbeat hash exists), as `cointoss status` shows it."""

    identity: str
    busy: int
    quiet: bool


def read_backlog(client: redis.Redis, prefix: str = "", now: float | None = None) -> Backlog:
    """Counts everything that keeps a Redis from being drained, in pipelined round trips."""
    names, complete = queue_names(client, prefix)
    journals, journals_complete = scan_keys(client, k.MIGRATE_JOURNAL_PREFIX)
    pipe = client.pipeline(transaction=False)
    for journal in journals:
        pipe.hget(journal, "count")
    moving = sum(_count(raw) for raw in pipe.execute())
    for name in names:
        pipe.llen(k.queue_key(prefix, name))
    for key in (k.SCHEDULE, k.RETRY, k.DEAD):
        pipe.zcard(prefix + key)
    replies = pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception) and not _is_wrong_type(reply):
            raise reply
    keys = [k.QUEUE_PREFIX + name for name in names] + [k.SCHEDULE, k.RETRY, k.DEAD]
    wrong = tuple(key for key, reply in zip(keys, replies, strict=True) if _is_wrong_type(reply))
    *lengths, schedule, retry, dead = (0 if _is_wrong_type(r) else r for r in replies)
    processes = alive(read_heartbeats(client, prefix), time.time() if now is None else now)
    return Backlog(
        queues=dict(zip(names, lengths, strict=True)),
        schedule=schedule,
        retry=retry,
        dead=dead,
        live_processes=len(processes),
        busy=sum(p.busy for p in processes),
        complete=complete and journals_complete and not wrong,
        wrong_type=wrong,
        moving=moving,
        moving_batches=len(journals),
        heartbeats=tuple(processes),
    )


def read_processes(
    client: redis.Redis, prefix: str = "", now: float | None = None
) -> list[ProcessInfo]:
    """The live processes (heartbeat hash present, not a ghost); busy is what each reports."""
    live = alive(read_heartbeats(client, prefix), time.time() if now is None else now)
    return [ProcessInfo(p.identity, p.busy, p.quiet) for p in live]


def _is_wrong_type(reply: object) -> bool:
    """A pipelined count that came back as WRONGTYPE: the key holds another type."""
    return isinstance(reply, Exception) and str(reply).startswith("WRONGTYPE")


def _count(raw: bytes | None) -> int:
    try:
        return max(int(raw or 0), 0)
    except ValueError:
        return 0


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _escape_glob(text: str) -> str:
    """A namespace like `app[1]:` must match literally in SCAN's glob."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)
