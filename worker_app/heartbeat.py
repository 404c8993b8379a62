"""Sidekiq's process heartbeat, so Sidekiq's API and Web UI count this process.

Every beat (5 s): the stats counters gathered since the last beat and the `<identity>:work` hash
in one MULTI, then `processes` membership, the `<identity>` hash (EXPIRE 60) and one remote
signal from `<identity>-signals` in another, exactly as Sidekiq 6.4's launcher does. The hash and
its `info` carry the union of what Sidekiq 6.4 to 8.1 write, since each version's readers look for
their own fields and ignore the others'.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psutil
import redis
from redis.typing import EncodableT, FieldT

from worker_app import keys
from worker_app.config import QueueSpec, WorkerConfig

REMOTE_SIGNALS = {"TSTP", "TERM", "TTIN", "INT", "USR1", "USR2"}
VERSION = "worker_app"  # `info.version`: 7.x/8.x Web UIs print it beside a non-Sidekiq process
CAPSULE = "default"  # worker_app has one set of threads: Sidekiq 7+'s default capsule


def hostname() -> str:
    return os.environ.get("DYNO") or socket.gethostname()


def new_identity() -> str:
    """`<hostname>:<pid>:<12 hex nonce>`, Sidekiq's process identity."""
    return f"{hostname()}:{os.getpid()}:{os.urandom(6).hex()}"


@dataclass
class ProcessState:
    """What the worker threads report and the heartbeat publishes."""

    processed: int = 0
    failed: int = 0
    quiet: bool = False
    running: dict[str, tuple[str, bytes, int]] = field(default_factory=dict)  # tid -> work
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, failed: bool) -> None:
        with self.lock:
            self.processed += 1
            self.failed += failed

    def take_counts(self) -> tuple[int, int]:
        with self.lock:
            counts = (self.processed, self.failed)
            self.processed = self.failed = 0
            return counts

    def give_back(self, processed: int, failed: int) -> None:
        """A beat that failed keeps its counts for the next one."""
        with self.lock:
            self.processed += processed
            self.failed += failed


class Heartbeat:
    def __init__(
        self,
        client: redis.Redis,
        identity: str,
        config: WorkerConfig,
        state: ProcessState,
        log: Any,
    ) -> None:
        self.redis = client
        self.identity = identity
        self.config = config
        self.state = state
        self.log = log
        self.info = json.dumps(
            process_info(config, identity, hostname(), os.getpid(), time.time()),
            separators=(",", ":"),
        )
        self._process = psutil.Process()
        self._failing = False

    def beat(self) -> bool:
        """One heartbeat; False (and a log line) when Redis is unreachable."""
        processed, failed = self.state.take_counts()
        try:
            self._flush(processed, failed)
            processed = failed = 0
            rtt_us = self._rtt_us()
            pipe = self.redis.pipeline(transaction=True)
            pipe.sadd(keys.PROCESSES, self.identity)
            pipe.hset(
                self.identity,
                mapping={
                    "info": self.info,
                    "concurrency": self.config.concurrency,  # what 8.1.2+ readers take it from
                    "busy": len(self.state.running),
                    "beat": repr(time.time()),
                    "rtt_us": rtt_us,
                    "quiet": "true" if self.state.quiet else "false",
                    "rss": self._process.memory_info().rss // 1024,
                },
            )
            pipe.expire(self.identity, self.config.heartbeat_ttl)
            pipe.rpop(keys.signals_key(self.identity))
            remote = pipe.execute()[-1]
        except redis.RedisError as exc:
            self.state.give_back(processed, failed)
            if not self._failing:
                self.log.warning("heartbeat_failed", error=str(exc))
            self._failing = True
            return False
        if self._failing:
            self.log.info("heartbeat_restored")
        self._failing = False
        if remote:
            self._deliver(remote.decode("utf-8", "replace"))
        return True

    def flush_stats(self) -> None:
        """At exit, so no processed job goes uncounted."""
        processed, failed = self.state.take_counts()
        try:
            self._flush(processed, failed, work=False)
        except redis.RedisError as exc:
            self.log.warning("stats_flush_failed", error=str(exc))

    def clear(self) -> None:
        """Leaves `processes` on a clean stop; the `<identity>` hash just expires, as Sidekiq's."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.srem(keys.PROCESSES, self.identity)
            pipe.unlink(*keys.work_keys(self.identity))
            pipe.execute()
        except redis.RedisError as exc:
            self.log.warning("heartbeat_clear_failed", error=str(exc))

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.config.heartbeat_interval):
            self.beat()

    def _flush(self, processed: int, failed: int, *, work: bool = True) -> None:
        pipe = self.redis.pipeline(transaction=True)
        if processed or failed:
            date = datetime.now(UTC).strftime("%Y-%m-%d")
            for stat, count in ((keys.STAT_PROCESSED, processed), (keys.STAT_FAILED, failed)):
                pipe.incrby(stat, count)
                pipe.incrby(keys.daily(stat, date), count)
                pipe.expire(keys.daily(stat, date), keys.STATS_TTL_S)
        if work:
            running: dict[FieldT, EncodableT] = {
                tid: _work_entry(*work) for tid, work in list(self.state.running.items())
            }
            for key in keys.work_keys(self.identity):
                pipe.unlink(key)
                if running:
                    pipe.hset(key, mapping=running)
                    pipe.expire(key, keys.HEARTBEAT_TTL_S)
        pipe.execute()

    def _rtt_us(self) -> int:
        start = time.perf_counter()
        self.redis.ping()
        return int((time.perf_counter() - start) * 1_000_000)

    def _deliver(self, name: str) -> None:
        """Sidekiq's API pushes a signal name; the process sends it to itself."""
        if name not in REMOTE_SIGNALS:
            self.log.warning("remote_signal_ignored", signal=name)
            return
        self.log.info("remote_signal", signal=name)
        os.kill(os.getpid(), getattr(signal, f"SIG{name}"))


def process_info(
    config: WorkerConfig, identity: str, host: str, pid: int, started_at: float
) -> dict[str, Any]:
    """The `info` JSON in Sidekiq 8.1's key order, keeping the fields older readers use:
    `concurrency` (6.x to 8.1.1 read it here), `queues` (6.x), `weights` (7.x, one hash per
    capsule) and `capsules` (8.0.9+)."""
    weights = _capsule_weights(config.queues)
    return {
        "hostname": host,
        "started_at": started_at,
        "pid": pid,
        "tag": config.tag,
        "concurrency": config.concurrency,
        "capsules": {
            CAPSULE: {
                "concurrency": config.concurrency,
                "mode": _capsule_mode(weights),
                "weights": weights,
            }
        },
        "queues": list(weights),
        "weights": [weights],
        "labels": [],
        "identity": identity,
        "version": VERSION,
        "embedded": False,
    }


def _capsule_weights(queues: QueueSpec) -> dict[str, int]:
    """Sidekiq 7+'s `weights`: 0 for every queue in strict order, else the configured weight."""
    return {
        name: 0 if queues.strict else weight
        for name, weight in zip(queues.names, queues.weights, strict=True)
    }


def _capsule_mode(weights: dict[str, int]) -> str:
    """Sidekiq's `Capsule#mode`, derived from the weights exactly as Sidekiq derives it."""
    if all(weight == 0 for weight in weights.values()):
        return "strict"
    return "random" if all(weight == 1 for weight in weights.values()) else "weighted"


def _work_entry(queue: str, payload: bytes, run_at: int) -> str:
    """Sidekiq's `<identity>:work` value; `payload` is the job JSON as a string, not an object."""
    return json.dumps(
        {"queue": queue, "payload": payload.decode("utf-8", "replace"), "run_at": run_at},
        separators=(",", ":"),
        ensure_ascii=False,
    )
