"""What `cointoss status` shows of a Sidekiq Redis: lengths with the oldest job's age."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from supervisor.layouts.base import KeyStatus, View, age
from supervisor.layouts.sidekiq import keys as sk
from supervisor.layouts.sidekiq.backlog import read_backlog, read_processes

if TYPE_CHECKING:
    import redis


def read_view(client: redis.Redis, prefix: str, now: float) -> View:
    """Counts from `read_backlog`, plus ages and consumers for the table."""
    backlog = read_backlog(client, prefix)
    names = list(backlog.queues)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.lindex(sk.queue_key(prefix, name), -1)  # the consuming end: the oldest job
    for key in (sk.SCHEDULE, sk.RETRY, sk.DEAD):
        pipe.zrange(prefix + key, 0, 0, withscores=True)
    replies = pipe.execute(raise_on_error=False)
    lists = {
        name: KeyStatus(backlog.queues[name], _job_age(reply, now))
        for name, reply in zip(names, replies, strict=False)
    }
    sizes = {**backlog.waiting, **backlog.terminal}
    sets = {
        key: _set_status(key, sizes[key], reply, now)
        for key, reply in zip((sk.SCHEDULE, sk.RETRY, sk.DEAD), replies[len(names) :], strict=True)
    }
    return View(
        backlog=backlog,
        queues={n: s for n, s in lists.items() if not n.startswith(sk.PRIVATE_QUEUE_MARK)},
        private_lists={n: s for n, s in lists.items() if n.startswith(sk.PRIVATE_QUEUE_MARK)},
        sets=sets,
        processes=read_processes(client, prefix),
    )


def _set_status(key: str, size: int, reply: Any, now: float) -> KeyStatus:
    if not isinstance(reply, list) or not reply:
        return KeyStatus(size)
    member, score = reply[0]
    oldest = age(now, score) if key == sk.DEAD else _job_age(member, now, field="created_at")
    due = None if key == sk.DEAD else age(score, now)
    return KeyStatus(size, oldest, due)


def _job_age(raw: Any, now: float, field: str = "enqueued_at") -> float | None:
    """Age from the job JSON's float epoch seconds; a member that is not JSON has no age."""
    if not isinstance(raw, bytes | str):
        return None
    try:
        job = json.loads(raw)
        stamp = job.get(field) or job.get("created_at")
        return age(now, float(stamp))
    except (ValueError, TypeError, AttributeError):
        return None
