"""What `cointoss status` shows of a Celery broker, and the traps its layout sets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.layouts.base import Backlog, KeyStatus, View, age, scan_keys
from supervisor.layouts.celery import keys as ck
from supervisor.layouts.celery.backlog import read_consumers, unacked_older_than

if TYPE_CHECKING:
    import redis

    from supervisor.layouts.celery.layout import CeleryLayout


def read_view(layout: CeleryLayout, client: redis.Redis, now: float) -> View:
    """Queue lengths (kombu messages carry no enqueue time, so no age), and `unacked` with the
    age of its oldest delivery."""
    backlog = layout.read_backlog(client)
    first_unacked = client.zrange(layout.prefix + ck.UNACKED_INDEX, 0, 0, withscores=True)
    queues = {name: KeyStatus(size) for name, size in backlog.queues.items()}
    unacked_age = age(now, float(first_unacked[0][1])) if first_unacked else None
    sets = {ck.UNACKED: KeyStatus(backlog.held[ck.UNACKED], unacked_age)}
    return View(
        backlog=backlog,
        queues=queues,
        sets=sets,
        processes=read_consumers(client),
        notes=tuple(_notes(layout, client, backlog)),
    )


def _notes(layout: CeleryLayout, client: redis.Redis, backlog: Backlog) -> list[str]:
    """Celery's traps: held messages, results and beat state per Redis."""
    found = []
    unacked = backlog.held[ck.UNACKED]
    if unacked:
        stale = unacked_older_than(client, layout.prefix, layout.visibility_timeout_s)
        found.append(
            f"{unacked} unacked messages (reserved, prefetched or waiting for an ETA/retry) are"
            f" held by workers here; {stale} are older than the visibility timeout"
            f" ({layout.visibility_timeout_s:g} s): kombu restores those while a consumer runs"
            " here, and with none left cointoss migrate --only unacked moves them"
        )
    results, _ = scan_keys(client, layout.prefix + ck.RESULT_PREFIX)
    if results:
        found.append(
            f"{len(results)} Celery results (celery-task-meta-*) live here: if the result"
            " backend is tossed with the broker, callers on the other side never see them;"
            " keep CELERY_RESULT_BACKEND on NEW and toss only the broker URL"
        )
    if scan_keys(client, layout.prefix + ck.REDBEAT_PREFIX)[0]:
        found.append(
            "celery-redbeat schedules live here: beat state is per Redis, run beat on one side"
        )
    return found
