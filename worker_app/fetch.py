"""Reliable fetch: a job taken from `queue:<q>` waits in this process's in-flight list until done.

One Lua call acknowledges the jobs finished since the last call and takes the next batch (up to
the concurrency, and only from a queue long enough to share), so a backlog costs well under one
round trip per job (Sidekiq pays one BRPOP per job). Lists whose owner has no live heartbeat go
back to their queues (`recover_orphans`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import redis

from worker_app import keys, lua
from worker_app.config import QueueSpec

BLOCK_TIMEOUT_S = 2  # Sidekiq's BasicFetch::TIMEOUT: how soon an idle thread notices a stop
RECOVERY_LOCK_TTL_S = 30


@dataclass(frozen=True)
class UnitOfWork:
    queue: str
    payload: bytes
    inflight: str


class ReliableFetch:
    def __init__(
        self, client: redis.Redis, identity: str, queues: QueueSpec, concurrency: int
    ) -> None:
        self.redis = client
        self.max_batch = concurrency
        self.divisor = concurrency
        self.identity = identity
        self.spec = queues
        self.names = list(dict.fromkeys(queues.names))
        self._weighted = [
            n for n, w in zip(queues.names, queues.weights, strict=True) for _ in range(w)
        ]
        self._fetch = client.register_script(lua.FETCH)
        self._requeue = client.register_script(lua.REQUEUE)
        self._recover = client.register_script(lua.RECOVER)
        self._release = client.register_script(lua.RELEASE)
        self._settle = client.register_script(lua.SETTLE)

    def queue_order(self) -> list[str]:
        """Strict: as configured. Weighted: reshuffled per fetch, then de-duplicated (Sidekiq)."""
        if self.spec.strict:
            return self.names
        shuffled = random.sample(self._weighted, len(self._weighted))
        return list(dict.fromkeys(shuffled))

    def fetch(self, slot: int, acks: Sequence[UnitOfWork] = ()) -> list[UnitOfWork]:
        """Acks `acks`, then takes a batch (one round trip); blocks up to 2 s when all is empty.

        Idle threads block on different queues (by `slot`), so a job arriving on any queue
        wakes one of them at once.
        """
        order = self.queue_order()
        index = {name: i for i, name in enumerate(order, start=1)}
        inflight = [keys.inflight_key(self.identity, q) for q in order]
        ack_args: list[bytes | int] = []
        for work in acks:
            ack_args += [index[work.queue], work.payload]
        found = self._fetch(
            keys=[
                k
                for q, flight in zip(order, inflight, strict=True)
                for k in (keys.queue_key(q), flight)
            ],
            args=[self.max_batch, self.divisor, len(acks), *ack_args],
        )
        if found:
            pair = int(found[0]) - 1
            return [UnitOfWork(order[pair], payload, inflight[pair]) for payload in found[1:]]
        queue = self.names[slot % len(self.names)]  # fixed spread: every queue has a waiter
        flight = keys.inflight_key(self.identity, queue)
        payload = cast(
            bytes | None, self.redis.brpoplpush(keys.queue_key(queue), flight, BLOCK_TIMEOUT_S)
        )
        return [UnitOfWork(queue, payload, flight)] if payload is not None else []

    def ack(self, works: Sequence[UnitOfWork]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for work in works:
            pipe.lrem(work.inflight, 1, work.payload)  # type: ignore[arg-type]  # bytes are fine
        pipe.execute()

    def requeue(self, work: UnitOfWork) -> bool:
        """Back, unchanged, to the end the fetch reads first; False if it was already acked."""
        return bool(
            self._requeue(
                keys=[work.inflight, keys.queue_key(work.queue), keys.QUEUES],
                args=[work.payload, work.queue],
            )
        )

    def settle(self, work: UnitOfWork, target: str, score: float, payload: bytes) -> bool:
        """Moves a finished-with-error job from in-flight into `retry` or `dead` in one step;
        False if it was no longer ours (recovered by another process meanwhile)."""
        trim = "1" if target == keys.DEAD else "0"
        cutoff = repr(time.time() - keys.DEAD_TIMEOUT_S)
        return bool(
            self._settle(
                keys=[work.inflight, target],
                args=["list", work.payload, repr(score), payload, trim, cutoff, keys.DEAD_MAX_JOBS],
            )
        )

    def recover_orphans(self) -> dict[str, int]:
        """Returns jobs moved per queue; does nothing while another process holds the lock."""
        if not self.redis.set(keys.RECOVERY_LOCK, self.identity, nx=True, ex=RECOVERY_LOCK_TTL_S):
            return {}
        moved: dict[str, int] = {}
        try:
            for raw_key in self.redis.scan_iter(
                match=_glob(keys.INFLIGHT_PREFIX) + "*", count=1000
            ):
                key = raw_key.decode("utf-8", "replace")
                parsed = keys.parse_inflight_key(key)
                if parsed is None or parsed[0] == self.identity:
                    continue
                owner, queue = parsed
                count = self._recover(
                    keys=[owner, key, keys.queue_key(queue), keys.QUEUES], args=[queue]
                )
                if count > 0:
                    moved[queue] = moved.get(queue, 0) + int(count)
        finally:
            self._release(keys=[keys.RECOVERY_LOCK], args=[self.identity])
        return moved


def _glob(text: str) -> str:
    """`queue:sq|` taken literally in SCAN's glob."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)
