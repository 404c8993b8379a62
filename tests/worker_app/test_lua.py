"""The Lua steps of reliable fetch, recovery and the poller, run against a real redis-server."""

from __future__ import annotations

import json
import time

from supervisor.demo.embedded_redis import RedisServer
from worker_app import keys
from worker_app.client import Client
from worker_app.config import parse_queues
from worker_app.fetch import ReliableFetch
from worker_app.scheduler import Poller

ME = "host:1:aaaaaaaaaaaa"
GONE = "host:2:bbbbbbbbbbbb"


class _Log:
    def __getattr__(self, _name: str):  # type: ignore[no-untyped-def]
        return lambda *args, **kwargs: None


def fetcher(
    server: RedisServer, queues: str = "default", concurrency: int = 2, identity: str = ME
) -> ReliableFetch:
    return ReliableFetch(server.client(), identity, parse_queues(queues), concurrency)


def test_fetch_moves_the_job_into_this_process_inflight_list(new_redis: RedisServer) -> None:
    """A fetched job leaves the queue and sits, unchanged, in `queue:sq|<identity>|<q>`."""
    Client(new_redis.url).push("NoopJob", [1])
    raw = new_redis.client().lindex("queue:default", 0)
    (work,) = fetcher(new_redis).fetch(0)
    r = new_redis.client()
    assert work.payload == raw and r.llen("queue:default") == 0
    assert r.lrange(keys.inflight_key(ME, "default"), 0, -1) == [raw]


def test_ack_rides_on_the_next_fetch(new_redis: RedisServer) -> None:
    """The acks passed to fetch leave the in-flight list in the same call."""
    Client(new_redis.url).push_bulk("NoopJob", [[1], [2]])
    f = fetcher(new_redis, concurrency=1)
    (first,) = f.fetch(0)
    (second,) = f.fetch(0, [first])
    assert new_redis.client().lrange(first.inflight, 0, -1) == [second.payload]


def test_batch_is_bounded_by_concurrency_and_queue_share(new_redis: RedisServer) -> None:
    """A long queue yields a batch of `concurrency`; a short one yields a single job."""
    Client(new_redis.url).push_bulk("NoopJob", [[i] for i in range(100)])
    assert len(fetcher(new_redis, concurrency=10).fetch(0)) == 10
    new_redis.client().delete("queue:default")
    Client(new_redis.url).push_bulk("NoopJob", [[i] for i in range(5)])
    assert len(fetcher(new_redis, concurrency=10).fetch(0)) == 1


def test_batch_is_fifo(new_redis: RedisServer) -> None:
    """Jobs in a batch come in push order."""
    Client(new_redis.url).push_bulk("NoopJob", [[i] for i in range(40)])
    works = fetcher(new_redis, concurrency=4).fetch(0)
    assert [json.loads(w.payload)["args"][0] for w in works] == [0, 1, 2, 3]


def test_strict_order_takes_the_first_queue_first(new_redis: RedisServer) -> None:
    """With strict queues, `critical` is served before `default`."""
    Client(new_redis.url).push("NoopJob", [], queue="default")
    Client(new_redis.url).push("NoopJob", [], queue="critical")
    (work,) = fetcher(new_redis, "critical,default").fetch(0)
    assert work.queue == "critical"


def test_weighted_order_serves_both_queues_by_weight(new_redis: RedisServer) -> None:
    """Weighted queues are reshuffled per fetch: the heavier queue comes first more often."""
    f = fetcher(new_redis, "critical:3,default:1")
    firsts = [f.queue_order()[0] for _ in range(4000)]
    share = firsts.count("critical") / len(firsts)
    assert 0.65 < share < 0.85 and set(f.queue_order()) == {"critical", "default"}


def test_idle_fetch_blocks_then_returns_nothing(new_redis: RedisServer) -> None:
    """With every queue empty, fetch blocks (BRPOPLPUSH, 2 s) and returns no job."""
    started = time.monotonic()
    assert fetcher(new_redis).fetch(0) == []
    assert 1.5 < time.monotonic() - started < 5


def test_requeue_puts_the_job_back_unchanged_at_the_read_end_once(new_redis: RedisServer) -> None:
    """Requeue RPUSHes the exact bytes (next to be popped); a second requeue does nothing."""
    Client(new_redis.url).push_bulk("NoopJob", [[1], [2], [3]])
    f = fetcher(new_redis, concurrency=1)
    (work,) = f.fetch(0)
    assert f.requeue(work) and not f.requeue(work)
    r = new_redis.client()
    assert r.lindex("queue:default", -1) == work.payload and r.llen("queue:default") == 3
    assert r.llen(work.inflight) == 0


def test_recovery_returns_orphans_of_dead_processes_only(new_redis: RedisServer) -> None:
    """A list whose owner has no heartbeat goes back to its queue; a live owner's list stays."""
    Client(new_redis.url).push_bulk("NoopJob", [[i] for i in range(4)])
    dead = fetcher(new_redis, concurrency=1, identity=GONE)
    alive = fetcher(new_redis, concurrency=1, identity="host:3:cccccccccccc")
    r = new_redis.client()
    r.hset("host:3:cccccccccccc", "info", "{}")
    taken_by_dead = [dead.fetch(0)[0], dead.fetch(0)[0]]
    alive.fetch(0)
    moved = fetcher(new_redis).recover_orphans()
    assert moved == {"default": 2}
    assert r.llen(keys.inflight_key("host:3:cccccccccccc", "default")) == 1
    # the oldest orphan is at the read end: it runs first
    assert r.lindex("queue:default", -1) == taken_by_dead[0].payload
    assert r.get(keys.RECOVERY_LOCK) is None


def test_recovery_skips_while_another_process_holds_the_lock(new_redis: RedisServer) -> None:
    """Only one recoverer at a time: with the lock taken, nothing moves."""
    Client(new_redis.url).push("NoopJob", [])
    fetcher(new_redis, identity=GONE).fetch(0)
    new_redis.client().set(keys.RECOVERY_LOCK, "someone-else")
    assert fetcher(new_redis).recover_orphans() == {}
    assert new_redis.client().llen(keys.inflight_key(GONE, "default")) == 1


def test_poller_moves_due_members_once_with_fresh_enqueued_at(new_redis: RedisServer) -> None:
    """Due schedule/retry members reach their queue with enqueued_at refreshed; future ones stay."""
    r = new_redis.client()
    due = b'{"retry":true,"queue":"low","class":"NoopJob","args":[],"jid":"a","created_at":1.5}'
    failed = b'{"retry":true,"queue":"default","class":"FailJob","args":[],"jid":"b","created_at":1.5,"enqueued_at":2.5,"error_message":"x","error_class":"E","failed_at":3.5,"retry_count":0}'
    r.zadd("schedule", {due: time.time() - 1, b'{"class":"Later","args":[]}': time.time() + 60})
    r.zadd("retry", {failed: time.time() - 1})
    poller = Poller(r, 1.0, _Log())
    before = time.time()
    assert poller.enqueue_due() == 2
    assert poller.enqueue_due() == 0
    low = json.loads(r.lindex("queue:low", 0))
    assert list(low) == ["retry", "queue", "class", "args", "jid", "created_at", "enqueued_at"]
    assert low["enqueued_at"] >= before
    retried = json.loads(r.lindex("queue:default", 0))
    assert list(retried)[:7] == list(json.loads(failed))[:7] and retried["enqueued_at"] >= before
    assert r.smembers("queues") == {b"low", b"default"} and r.zcard("schedule") == 1


def test_poller_buries_a_malformed_member_in_dead_as_raw_bytes(new_redis: RedisServer) -> None:
    """A due member that is not a job is kept in `dead` byte for byte (Sidekiq would lose it)."""
    r = new_redis.client()
    r.zadd("schedule", {b"{not json": time.time() - 1})
    Poller(r, 1.0, _Log()).enqueue_due()
    assert r.zrange("dead", 0, -1) == [b"{not json"] and r.zcard("schedule") == 0


def test_dead_set_is_trimmed_like_sidekiqs(new_redis: RedisServer) -> None:
    """Adding to `dead` drops members older than 180 days and keeps 9,999 (Sidekiq's off-by-one)."""
    r = new_redis.client()
    now = time.time()
    r.zadd("dead", {f"old{i}": now - 181 * 86400 for i in range(5)})
    r.zadd("dead", {f"m{i}": now - 10 + i / 100000 for i in range(10_003)})
    Client(new_redis.url).push("NoopJob", [])
    f = fetcher(new_redis)
    (fetched,) = f.fetch(0)
    assert f.settle(fetched, keys.DEAD, now, fetched.payload)
    assert not f.settle(fetched, keys.DEAD, now, fetched.payload)
    assert r.zcard("dead") == 9_999
    assert r.zscore("dead", fetched.payload) is not None and r.zscore("dead", "old0") is None
