"""Reads what is left on an RQ Redis (see the package docstring for the drain definition)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.layouts.base import Backlog, Consumer, counts, read_journals, scan_keys, text
from supervisor.layouts.rq import keys as rk

if TYPE_CHECKING:
    import redis

_NOT_QUEUES = (":intermediate",)  # lists under rq:queue: that are not queues


def queue_names(client: redis.Redis, keys: rk.RqKeys) -> tuple[list[str], bool]:
    """Queues from `rq:queues`, plus any queue list or scheduled set a bounded SCAN finds."""
    start = keys.queue_prefix
    names = {
        m[len(start) :] for m in map(text, client.smembers(keys.queues)) if m.startswith(start)
    }
    lists, lists_complete = scan_keys(client, start)
    names.update(
        key[len(start) :]
        for key in lists
        if not key.endswith(_NOT_QUEUES) and ":intermediate:" not in key and "_compact:" not in key
    )
    scheduled_start = keys.registry(rk.SCHEDULED, "")
    registries, registries_complete = scan_keys(client, scheduled_start)
    names.update(key[len(scheduled_start) :] for key in registries)
    return sorted(names), lists_complete and registries_complete


def redis_now(client: redis.Redis) -> float:
    """The server's clock: RQ scores are epoch seconds, and ours must not skew from OLD's."""
    seconds, micros = client.time()
    return seconds + micros / 1e6


def read_backlog(client: redis.Redis, keys: rk.RqKeys) -> Backlog:
    """Counts every queue and registry, in pipelined round trips."""
    names, complete = queue_names(client, keys)
    moving, journals, journals_complete = read_journals(client)
    limits = sorted(map(text, client.smembers(keys.rate_limit_keys)))
    now = redis_now(client)
    pipe = client.pipeline(transaction=False)
    labels: list[str] = []
    for name in names:
        pipe.llen(keys.queue(name))
        pipe.llen(keys.intermediate(name))
        pipe.zcard(keys.registry(rk.SCHEDULED, name))
        pipe.zcount(keys.registry(rk.WIP, name), now, "+inf")  # expired: abandoned, failed by RQ
        pipe.zcard(keys.registry(rk.DEFERRED, name))
        pipe.zcard(keys.registry(rk.READY, name))
        pipe.zcard(keys.registry(rk.FAILED, name))
        labels += [f"{kind}:{name}" for kind in _PER_QUEUE]
    for limit in limits:
        pipe.zcard(keys.rate_limited(limit))
        labels.append(f"rate_limited:{limit}")
    values, wrong = counts(pipe.execute(raise_on_error=False), labels)
    found = dict(zip(labels, values, strict=True))
    workers = read_workers(client, keys)
    return Backlog(
        queues={name: found[f"queue:{name}"] for name in names},
        waiting={f"{rk.SCHEDULED}:{n}": found[f"{rk.SCHEDULED}:{n}"] for n in names},
        held={
            label: size
            for label, size in found.items()
            if label.split(":", 1)[0] not in ("queue", rk.SCHEDULED, rk.FAILED)
        },
        terminal={f"{rk.FAILED}:{n}": found[f"{rk.FAILED}:{n}"] for n in names},
        live_processes=len(workers),
        busy=sum(w.busy for w in workers),
        complete=complete and journals_complete and not wrong,
        wrong_type=wrong,
        moving=moving,
        moving_batches=journals,
    )


_PER_QUEUE = ("queue", "intermediate", rk.SCHEDULED, rk.WIP, rk.DEFERRED, rk.READY, rk.FAILED)


def read_workers(client: redis.Redis, keys: rk.RqKeys) -> list[Consumer]:
    """A worker is live while its hash exists (RQ expires it 480 s after its last beat, 60 s
    after a clean death); it is busy while its `state` is `busy`."""
    members = sorted(map(text, client.smembers(keys.workers)))
    if not members:
        return []
    pipe = client.pipeline(transaction=False)
    for member in members:
        pipe.hmget(member, ["state", "death"])
    live = []
    for member, (state, death) in zip(members, pipe.execute(), strict=True):
        if state is None or death:  # expired, or registered its death
            continue
        name = member[len(keys.prefix) + len(":worker:") :]
        live.append(Consumer(name, 1 if state == rk.BUSY_STATE else 0))
    return live
