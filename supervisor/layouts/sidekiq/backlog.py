"""Reads what is left on a Sidekiq Redis, and judges whether it is drained.

DESIGN's definition: drained when every `queue:*` list, `schedule` and `retry` are empty and no
live Sidekiq process is busy. `dead` is reported but never blocks draining. Jobs a mover has
claimed but not yet acknowledged (a journal on OLD, left by a killed `cointoss migrate`) block it
too: they are on neither side's lists, and retiring OLD then would lose them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.layouts.base import Backlog, Consumer, count, counts, read_journals, scan_keys, text
from supervisor.layouts.sidekiq import keys as sk

if TYPE_CHECKING:
    import redis


def queue_names(client: redis.Redis, prefix: str) -> tuple[list[str], bool]:
    """Members of `queues` plus every `queue:*` key a bounded SCAN finds; False if cut short."""
    names = {text(name) for name in client.smembers(prefix + sk.QUEUES)}
    found, complete = scan_keys(client, prefix + sk.QUEUE_PREFIX)
    names.update(key[len(prefix + sk.QUEUE_PREFIX) :] for key in found)
    return sorted(names), complete


def read_backlog(client: redis.Redis, prefix: str = "") -> Backlog:
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
    processes = read_processes(client, prefix)
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
    )


def read_processes(client: redis.Redis, prefix: str = "") -> list[Consumer]:
    """A process is live while its heartbeat hash exists (EXPIRE 60); busy is what it reports."""
    identities = sorted(text(p) for p in client.smembers(prefix + sk.PROCESSES))
    if not identities:
        return []
    pipe = client.pipeline(transaction=False)
    for identity in identities:
        pipe.hmget(prefix + identity, [sk.HEARTBEAT_BUSY_FIELD, sk.HEARTBEAT_QUIET_FIELD])
        pipe.exists(prefix + identity)
    replies = pipe.execute(raise_on_error=False)
    live = []
    for identity, fields, exists in zip(identities, replies[::2], replies[1::2], strict=True):
        if isinstance(exists, int) and exists > 0:  # an error reply is an Exception, not an int
            busy_raw, quiet_raw = fields if isinstance(fields, list) else (b"1", None)
            # An unreadable `busy` counts as busy: the safe error is 'not drained yet'.
            busy = count(busy_raw, unreadable=1)
            live.append(Consumer(identity, busy, quiet_raw == b"true"))
    return live
