"""Each mover script on its own, against a real redis-server: claims, applies, and their replays."""

from __future__ import annotations

import pytest
import redis

from supervisor import constants as k
from supervisor.demo.embedded_redis import RedisServer
from supervisor.layouts import plain as lua

JOURNAL = k.MIGRATE_JOURNAL_PREFIX + "b1"
BIG = 4 * 1024 * 1024


def _claim_zset(
    client: redis.Redis, limit: int = 10, max_score: str = "+inf", max_bytes: int = BIG
):
    script = client.register_script(lua.claim_zset_lua)
    keys = ["schedule", JOURNAL, k.MIGRATE_SEQUENCE]
    return script(keys=keys, args=[limit, max_score, max_bytes, "1.5"])


def _claim_list(client: redis.Redis, limit: int = 10, max_bytes: int = BIG):
    script = client.register_script(lua.claim_list_lua)
    keys = ["queue:q", JOURNAL, k.MIGRATE_SEQUENCE]
    return script(keys=keys, args=[limit, max_bytes, "1.5", "queues", "q"])


def _apply(client: redis.Redis, dest: str, kind: str, items: bytes, batch_id: str = "b1"):
    script = client.register_script(lua.apply_lua)
    keys = [dest, k.MIGRATE_APPLIED, "queues"]
    return script(keys=keys, args=[batch_id, kind, items, "q", "1000.5", 3600])


class TestClaimZset:
    def test_claims_lowest_scores_into_a_journal_and_removes_them(
        self, old_redis: RedisServer
    ) -> None:
        """The claim takes the lowest-scored members, journals them, and ZREMs exactly those."""
        client = old_redis.client()
        client.zadd("schedule", {f"m{i}": i for i in range(20)})
        count, items = _claim_zset(client, limit=5)
        assert count == 5
        assert client.zrange("schedule", 0, 0) == [b"m5"]
        assert client.zcard("schedule") == 15
        journal = client.hgetall(JOURNAL)
        assert journal[b"source"] == b"schedule"
        assert journal[b"kind"] == b"zset"
        assert journal[b"count"] == b"5"
        assert journal[b"items"] == items

    def test_respects_the_score_bound(self, old_redis: RedisServer) -> None:
        """Members scored above the bound (not due yet) stay where they are."""
        client = old_redis.client()
        client.zadd("schedule", {"due": 10, "later": 99})
        count, _items = _claim_zset(client, max_score="50")
        assert count == 1
        assert client.zrange("schedule", 0, -1) == [b"later"]

    def test_caps_a_claim_by_bytes_but_always_takes_one(self, old_redis: RedisServer) -> None:
        """Large members are claimed a few at a time: the byte cap bounds each call."""
        client = old_redis.client()
        client.zadd("schedule", {f"{i}".ljust(1000, "x"): i for i in range(10)})
        count, _items = _claim_zset(client, limit=10, max_bytes=2500)
        assert count == 3
        client.delete(JOURNAL)
        count, _items = _claim_zset(client, limit=10, max_bytes=1)
        assert count == 1

    def test_refuses_to_overwrite_an_existing_journal(self, old_redis: RedisServer) -> None:
        """Reusing a batch id (a blind retry) errors out instead of replacing a journal."""
        client = old_redis.client()
        client.zadd("schedule", {"a": 1, "b": 2})
        _claim_zset(client, limit=1)
        with pytest.raises(redis.ResponseError, match="BUSYKEY"):
            _claim_zset(client, limit=1)
        assert client.zrange("schedule", 0, -1) == [b"b"]

    def test_wrong_type_errors_before_any_write(self, old_redis: RedisServer) -> None:
        """A `schedule` that is not a zset is left alone and no journal appears."""
        client = old_redis.client()
        client.set("schedule", "oops")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            _claim_zset(client)
        assert client.get("schedule") == b"oops"
        assert not client.exists(JOURNAL)

    def test_empty_source_claims_nothing(self, old_redis: RedisServer) -> None:
        """No members: no journal, count 0, and no number taken from the sequence."""
        client = old_redis.client()
        assert _claim_zset(client) == [0]
        assert not client.exists(JOURNAL)
        assert not client.exists(k.MIGRATE_SEQUENCE)


class TestClaimList:
    def test_claims_from_the_head_and_journals_in_order(self, old_redis: RedisServer) -> None:
        """The newest items come off the head, in list order, with the queue to register."""
        client = old_redis.client()
        client.rpush("queue:q", *[f"j{i}" for i in range(10)])
        count, _items = _claim_list(client, limit=4)
        assert count == 4
        assert client.lrange("queue:q", 0, -1) == [f"j{i}".encode() for i in range(4, 10)]
        journal = client.hgetall(JOURNAL)
        assert journal[b"kind"] == b"list"
        assert journal[b"queue"] == b"q"
        assert journal[b"queues"] == b"queues"

    def test_journals_number_claims_from_olds_counter(self, old_redis: RedisServer) -> None:
        """Each claim, of a list or a zset, takes the next `seq` from OLD; `claimed_at` stays."""
        client = old_redis.client()
        client.rpush("queue:q", *[f"j{i}" for i in range(3)])
        client.zadd("schedule", {"s": 1})
        seqs = []
        for claim in (_claim_list, _claim_zset, _claim_list, _claim_list, _claim_zset):
            if claim(client, limit=1) != [0]:
                seqs.append(client.hget(JOURNAL, "seq"))
                assert client.hget(JOURNAL, "claimed_at") == b"1.5"
                client.delete(JOURNAL)  # the ack
        assert seqs == [b"1", b"2", b"3", b"4"]
        assert client.get(k.MIGRATE_SEQUENCE) == b"4"

    def test_wrong_type_errors_before_any_write(self, old_redis: RedisServer) -> None:
        """A `queue:*` key that is not a list is left alone."""
        client = old_redis.client()
        client.hset("queue:q", "a", "b")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            _claim_list(client)
        assert not client.exists(JOURNAL)


class TestApply:
    def test_zset_apply_keeps_members_and_exact_scores(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Members arrive byte for byte, with the score strings OLD printed."""
        old, new = old_redis.client(), new_redis.client()
        members = {b"\xff\x00raw": "1795819384.0738399", b'{"jid":"x"}': "0.1", b"": "-inf"}
        old.zadd("schedule", members)
        want = old.zrange("schedule", 0, -1, withscores=True, score_cast_func=bytes)
        _count, items = _claim_zset(old)
        assert _apply(new, "schedule", "zset", items) == 3
        got = new.zrange("schedule", 0, -1, withscores=True, score_cast_func=bytes)
        assert got == want
        assert dict(got)[b"\xff\x00raw"] == b"1795819384.0738399"

    def test_second_apply_of_a_batch_is_a_no_op(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """The marker stops a replay from bringing back a job NEW already took and ran."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("schedule", {"job": 5})
        _count, items = _claim_zset(old)
        assert _apply(new, "schedule", "zset", items) == 1
        new.zrem("schedule", "job")  # NEW's poller took it and ran it
        assert _apply(new, "schedule", "zset", items) == 0
        assert new.zcard("schedule") == 0
        assert new.zscore(k.MIGRATE_APPLIED, "b1") is not None
        assert new.ttl(k.MIGRATE_APPLIED) > 0

    def test_list_apply_appends_at_the_consuming_end_and_registers_the_queue(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Leftovers land behind nothing: they are the next jobs BRPOP returns, oldest first."""
        old, new = old_redis.client(), new_redis.client()
        old.lpush("queue:q", "oldest", "middle", "newest")
        new.lpush("queue:q", "fresh-on-new")
        _count, items = _claim_list(old)
        assert _apply(new, "queue:q", "list", items) == 3
        assert new.lrange("queue:q", 0, -1) == [b"fresh-on-new", b"newest", b"middle", b"oldest"]
        assert new.rpop("queue:q") == b"oldest"
        assert new.smembers("queues") == {b"q"}

    def test_wrong_type_on_new_writes_nothing_not_even_the_marker(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """A failed apply leaves no marker, so a later replay still applies the batch."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("schedule", {"job": 5})
        _count, items = _claim_zset(old)
        new.set("schedule", "oops")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            _apply(new, "schedule", "zset", items)
        assert not new.exists(k.MIGRATE_APPLIED)
        new.delete("schedule")
        assert _apply(new, "schedule", "zset", items) == 1

    def test_replay_after_a_crash_between_apply_and_ack_converges(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Apply, 'crash' before the ack, apply again from the journal: one copy, then ack."""
        old, new = old_redis.client(), new_redis.client()
        old.zadd("schedule", {f"m{i}": i for i in range(50)})
        _count, items = _claim_zset(old, limit=50)
        _apply(new, "schedule", "zset", items)
        journal_items = old.hget(JOURNAL, "items")
        assert journal_items is not None
        assert _apply(new, "schedule", "zset", journal_items) == 0
        old.delete(JOURNAL)
        assert new.zcard("schedule") == 50
        assert old.zcard("schedule") == 0

    def test_old_markers_are_trimmed(self, old_redis: RedisServer, new_redis: RedisServer) -> None:
        """Markers older than the TTL are dropped, so --follow over weeks keeps the set small."""
        old, new = old_redis.client(), new_redis.client()
        new.zadd(k.MIGRATE_APPLIED, {"ancient": -3000.0, "recent": 999.0})
        old.zadd("schedule", {"job": 5})
        _count, items = _claim_zset(old)
        _apply(new, "schedule", "zset", items)  # now=1000.5, ttl=3600: cutoff -2599.5
        assert new.zrange(k.MIGRATE_APPLIED, 0, -1) == [b"recent", b"b1"]
