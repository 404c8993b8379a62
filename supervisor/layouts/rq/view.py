"""What `cointoss status` shows of an RQ Redis, and the traps its layout sets."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from supervisor.layouts.base import KeyStatus, View, age, text
from supervisor.layouts.rq import keys as rk
from supervisor.layouts.rq.backlog import queue_names, read_backlog, read_workers, redis_now

if TYPE_CHECKING:
    import redis


def read_view(client: redis.Redis, keys: rk.RqKeys, now: float) -> View:
    """Queue lengths with the oldest job's age, registries with their next due time."""
    backlog = read_backlog(client, keys)
    names = list(backlog.queues)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.lindex(keys.queue(name), 0)  # the end workers pop: the oldest id
        pipe.zrange(keys.registry(rk.SCHEDULED, name), 0, 0, withscores=True)
        pipe.get(keys.scheduler_lock(name))
    replies = pipe.execute(raise_on_error=False)
    oldest_ids = replies[0::3]
    pipe = client.pipeline(transaction=False)
    for job_id in oldest_ids:
        pipe.hget(
            keys.job_prefix + text(job_id) if isinstance(job_id, bytes) else "", "enqueued_at"
        )
    stamps = pipe.execute(raise_on_error=False)
    queues = {
        name: KeyStatus(backlog.queues[name], age(now, _utc(stamp)))
        for name, stamp in zip(names, stamps, strict=True)
    }
    sets: dict[str, KeyStatus] = {}
    for name, first in zip(names, replies[1::3], strict=True):
        label = f"{rk.SCHEDULED}:{name}"
        due = age(first[0][1], now) if isinstance(first, list) and first else None
        sets[label] = KeyStatus(backlog.waiting[label], next_due_in_s=due)
    sets.update({label: KeyStatus(size) for label, size in sorted(backlog.held.items()) if size})
    sets.update({label: KeyStatus(size) for label, size in backlog.terminal.items()})
    locks = dict(zip(names, replies[2::3], strict=True))
    return View(
        backlog=backlog,
        queues=queues,
        sets=sets,
        processes=read_workers(client, keys),
        notes=tuple(_notes(client, keys, backlog.waiting, locks)),
    )


def _notes(
    client: redis.Redis, keys: rk.RqKeys, waiting: dict[str, int], locks: dict[str, Any]
) -> list[str]:
    """RQ's traps: scheduled jobs nobody promotes, cron state, abandoned in-flight jobs."""
    found = []
    for name, holder in locks.items():
        size = waiting.get(f"{rk.SCHEDULED}:{name}", 0)
        if size and holder not in (None, rk.MOVER_LOCK_TOKEN.encode()):
            found.append(
                f"{size} scheduled jobs in {rk.SCHEDULED}:{name} are held by the RQ scheduler"
                f" that owns {keys.scheduler_lock(name)} ({text(holder)}): cointoss migrate moves"
                f" only those due more than {rk.SCHEDULER_MARGIN_S} s later"
            )
        if size and holder is None:
            found.append(
                f"{size} scheduled jobs in {rk.SCHEDULED}:{name} but no RQ scheduler holds"
                f" {keys.scheduler_lock(name)}: nothing here enqueues them until a worker runs"
                " with --with-scheduler (on OLD: cointoss migrate moves them)"
            )
    if client.exists(keys.cron_schedulers):
        found.append(
            "RQ cron schedulers are registered here: cron state is per Redis, so run cron on"
            " one side only or its jobs run on both"
        )
    now = redis_now(client)
    pipe = client.pipeline(transaction=False)
    for name in queue_names(client, keys)[0]:
        pipe.zcount(keys.registry(rk.WIP, name), "-inf", f"({now}")
    abandoned = sum(int(n) for n in pipe.execute())
    if abandoned:
        found.append(
            f"{abandoned} abandoned jobs in wip (their worker died): RQ's maintenance retries"
            " or fails them on this Redis"
        )
    return found


def _utc(raw: Any) -> float | None:
    """RQ's `enqueued_at` (an ISO-8601 UTC string) as epoch seconds."""
    if not isinstance(raw, bytes):
        return None
    try:
        stamp = datetime.fromisoformat(raw.decode().replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.timestamp()
