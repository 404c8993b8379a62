"""What `cointoss status` shows of a Sidekiq Redis: lengths with the oldest job's age."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor.layouts.base import Ghost, KeyStatus, View, age
from supervisor.layouts.sidekiq import keys as sk
from supervisor.layouts.sidekiq.backlog import read_backlog, read_processes
from supervisor.layouts.sidekiq.heartbeats import ghosts, read_heartbeats
from supervisor.layouts.sidekiq.timestamps import job_stamp

if TYPE_CHECKING:
    import redis


def read_view(client: redis.Redis, prefix: str, now: float) -> View:
    """Counts from `read_backlog`, plus ages, consumers and ghosts for the table."""
    backlog = read_backlog(client, prefix, now)
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
        processes=read_processes(client, prefix, now),
        ghosts=[
            Ghost(g.identity, g.busy, age(now, g.beat) or 0.0)
            for g in ghosts(read_heartbeats(client, prefix), now)
        ],
    )


def _set_status(key: str, size: int, reply: Any, now: float) -> KeyStatus:
    if not isinstance(reply, list) or not reply:
        return KeyStatus(size)
    member, score = reply[0]
    oldest = age(now, score) if key == sk.DEAD else _job_age(member, now, field="created_at")
    due = None if key == sk.DEAD else age(score, now)
    return KeyStatus(size, oldest, due)


def _job_age(raw: Any, now: float, field: str = "enqueued_at") -> float | None:
    """Age from the job's `field` (else `created_at`), read as Sidekiq 8 reads either form; a
    member that is not JSON has no age."""
    if not isinstance(raw, bytes | str):
        return None
    return age(now, job_stamp(raw, field, "created_at"))
