"""Reads what is left on a Celery broker (see the package docstring for the drain definition)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.layouts.base import (
    Backlog,
    Consumer,
    counts,
    read_journals,
    scan_keys,
    text,
)
from supervisor.layouts.celery import keys as ck

if TYPE_CHECKING:
    import redis

UNPROVEN = (
    "with Celery's default early ack a running task leaves no trace in Redis: check"
    " `celery inspect active` before retiring OLD (MIGRATION_CELERY_ACKS_LATE=true if the"
    " app sets task_acks_late, which keeps running tasks in unacked)"
)


def queue_names(client: redis.Redis, prefix: str) -> tuple[list[str], bool]:
    """Queues bound to any exchange (kombu's routing table), plus the default `celery`."""
    bindings, complete = scan_keys(client, prefix + ck.BINDING_PREFIX)
    names = {ck.DEFAULT_QUEUE}
    for binding in bindings:
        if binding.endswith(ck.PLUMBING_SUFFIXES):
            continue
        for member in client.smembers(binding):
            queue = text(member).split(ck.SEP)[-1]
            if queue and not queue.endswith(ck.PLUMBING_SUFFIXES) and "celeryev." not in queue:
                names.add(queue)
    return sorted(names), complete


def read_backlog(client: redis.Redis, prefix: str, *, acks_late: bool) -> Backlog:
    """Every queue's priority lists, and `unacked`, in pipelined round trips."""
    names, complete = queue_names(client, prefix)
    moving, journals, journals_complete = read_journals(client)
    pipe = client.pipeline(transaction=False)
    labels = []
    for name in names:
        for step in ck.PRIORITY_STEPS:
            pipe.llen(prefix + ck.priority_list(name, step))
            labels.append(ck.priority_list(name, step))
    pipe.hlen(prefix + ck.UNACKED)
    labels.append(ck.UNACKED)
    (*lengths, unacked), wrong = counts(pipe.execute(raise_on_error=False), labels)
    steps = len(ck.PRIORITY_STEPS)
    consumers = read_consumers(client)
    return Backlog(
        queues={n: sum(lengths[i * steps : (i + 1) * steps]) for i, n in enumerate(names)},
        held={ck.UNACKED: unacked},
        live_processes=len(consumers),
        complete=complete and journals_complete and not wrong,
        wrong_type=wrong,
        moving=moving,
        moving_batches=journals,
        unproven="" if acks_late else UNPROVEN,
    )


def read_consumers(client: redis.Redis) -> list[Consumer]:
    """Connections to this database blocked in BRPOP: Celery's consumers, by the only sign
    Redis has of them (a heuristic: any BRPOP client counts). Empty when CLIENT LIST is denied."""
    import redis as redis_module

    db = int(client.connection_pool.connection_kwargs.get("db") or 0)
    try:
        clients = client.client_list()
    except redis_module.ResponseError:
        return []
    return [
        Consumer(f"{c.get('addr', '?')} {c.get('name', '')}".strip(), 0)
        for c in clients
        if c.get("cmd") in ("brpop", "blmpop") and int(c.get("db", 0)) == db
    ]


def unacked_older_than(client: redis.Redis, prefix: str, seconds: float) -> int:
    """Unacked messages delivered longer ago than the visibility timeout (kombu restores them)."""
    now_s, micros = client.time()
    return int(client.zcount(prefix + ck.UNACKED_INDEX, "-inf", now_s + micros / 1e6 - seconds))
