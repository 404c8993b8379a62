"""Reads what is left on a Sidekiq Redis, and judges whether it is drained.

Drained when every `queue:*` list, `schedule` and `retry` are empty and no live Sidekiq
process is busy (a ghost heartbeat, see heartbeats.py, is not a live process). `dead` is
reported but never blocks draining. Jobs a mover has claimed but not yet acknowledged (a
journal on OLD, left by a killed `cointoss migrate`) block it too: they are on neither side's
lists, and retiring OLD then would lose them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from supervisor.layouts.base import Backlog, Consumer, counts, read_journals, scan_keys, text
from supervisor.layouts.sidekiq import keys as sk
from supervisor.layouts.sidekiq.heartbeats import alive, read_heartbeats

if TYPE_CHECKING:
    import redis


def queue_names(client: redis.Redis, prefix: str) -> tuple[list[str], bool]:
    """Members of `queues` plus every `queue:*` key a bounded SCAN finds; False if cut short."""
    names = {text(name) for name in client.smembers(prefix + sk.QUEUES)}
    found, complete = scan_keys(client, prefix + sk.QUEUE_PREFIX)
    names.update(key[len(prefix + sk.QUEUE_PREFIX) :] for key in found)
    return sorted(names), complete


def read_backlog(client: redis.Redis, prefix: str = "", now: float | None = None) -> Backlog:
    """Counts everything that keeps a Redis from being drained, in pipelined round trips."""
    names, complete = queue_names(client, prefix)
    moving, journals, journals_complete = read_journals(client)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.llen(sk.queue_key(prefix, name))
    for key in (sk.SCHEDULE, sk.RETRY, sk.DEAD):
        pipe.zcard(prefix + key)
    labels = [sk.QUEUE_PREFIX + name for name in names] + [sk.SCHEDULE, sk.RETRY, sk.DEAD]
    (*lengths, schedule, retry, dead), wrong = counts(pipe.execute(raise_on_error=False), labels)
    processes = read_processes(client, prefix, now)
    return Backlog(
        queues=dict(zip(names, lengths, strict=True)),
        waiting={sk.SCHEDULE: schedule, sk.RETRY: retry},
        terminal={sk.DEAD: dead},
        live_processes=len(processes),
        busy=sum(p.busy for p in processes),
        complete=complete and journals_complete and not wrong,
        wrong_type=wrong,
        moving=moving,
        moving_batches=journals,
        heartbeats=tuple(processes),
    )


def read_processes(
    client: redis.Redis, prefix: str = "", now: float | None = None
) -> list[Consumer]:
    """The live processes (heartbeat hash present, not a ghost); busy is what each reports."""
    live = alive(read_heartbeats(client, prefix), time.time() if now is None else now)
    return [heartbeat.consumer() for heartbeat in live]
