"""Reliable fetch: a job taken from `queue:<q>` waits in this process's in-flight list until done.

Taking and acknowledging happen in one Lua call per job (the ack of the previous job rides on
the fetch of the next), so the per-job cost is one round trip, as with Sidekiq's BRPOP. Lists
whose owner has no live heartbeat go back to their queues (`recover_orphans`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

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
    def __init__(self, client: redis.Redis, identity: str, queues: QueueSpec) -> None:
        self.redis = client
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

    def queue_order(self) -> list[str]:
        """Strict: as configured. Weighted: reshuffled per fetch, then de-duplicated (Sidekiq)."""
        if self.spec.strict:
            return self.names
        shuffled = random.sample(self._weighted, len(self._weighted))
        return list(dict.fromkeys(shuffled))

    def fetch(self, slot: int, ack: UnitOfWork | None = None) -> UnitOfWork | None:
        """Acks `ack`, then takes one job; blocks up to 2 s when every queue is empty.

        Idle threads block on different queues (by `slot`), so a job arriving on any queue
        wakes one of them at once.
        """
        order = self.queue_order()
        pairs = [(keys.queue_key(q), keys.inflight_key(self.identity, q)) for q in order]
        found = self._fetch(
            keys=[ack.inflight if ack else pairs[0][1], *(k for pair in pairs for k in pair)],
            args=["1" if ack else "0", ack.payload if ack else b""],
        )
        if found:
            index, payload = found
            return UnitOfWork(order[int(index) - 1], payload, pairs[int(index) - 1][1])
        queue = order[slot % len(order)]
        inflight = keys.inflight_key(self.identity, queue)
        payload = self.redis.brpoplpush(keys.queue_key(queue), inflight, BLOCK_TIMEOUT_S)
        return UnitOfWork(queue, payload, inflight) if payload is not None else None

    def ack(self, work: UnitOfWork) -> None:
        self.redis.lrem(work.inflight, 1, work.payload)

    def requeue(self, work: UnitOfWork) -> bool:
        """Back, unchanged, to the end the fetch reads first; False if it was already acked."""
        return bool(
            self._requeue(
                keys=[work.inflight, keys.queue_key(work.queue), keys.QUEUES],
                args=[work.payload, work.queue],
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
