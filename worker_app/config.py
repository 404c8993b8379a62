"""Settings from the environment, read once: `REDIS_URL`, `REDIS_PRODUCER_URL` and `WORKER_*`.

A plain dataclass instead of pydantic keeps the worker's start-up fast. A bad value is one line
naming the variable and exit 78 (EX_CONFIG), never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

EX_CONFIG = 78
DEFAULT_REDIS_URL = "redis://localhost:6379/0"  # Sidekiq's default too


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable and never holds a secret."""


@dataclass(frozen=True)
class QueueSpec:
    """`critical:3,default:1` -> weighted; `critical,default` -> strict, in the order given."""

    names: tuple[str, ...]
    weights: tuple[int, ...]
    strict: bool


@dataclass(frozen=True)
class WorkerConfig:
    redis_url: str
    producer_url: str
    queues: QueueSpec
    concurrency: int = 5
    shutdown_timeout: float = 25.0
    poll_interval: float | None = None  # average seconds; None = Sidekiq's 5 s x process count
    heartbeat_interval: float = 5.0
    heartbeat_ttl: int = 60
    recovery_interval: float = 30.0
    tag: str = ""
    log_level: str = "info"
    imports: tuple[str, ...] = ()


def parse_queues(text: str) -> QueueSpec:
    names: list[str] = []
    weights: list[int] = []
    weighted = False
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, weight = item.rpartition(":") if ":" in item else (item, "", "1")
        if sep:
            weighted = True
        if not name or not weight.isdigit() or int(weight) < 1:
            raise ConfigError(
                f"WORKER_QUEUES: bad item {item!r}; expected NAME or NAME:WEIGHT (weight >= 1)"
            )
        names.append(name)
        weights.append(int(weight))
    if not names:
        raise ConfigError("WORKER_QUEUES: no queue given; e.g. `default` or `critical:3,default:1`")
    return QueueSpec(tuple(names), tuple(weights), strict=not weighted)


def load_config(environ: Mapping[str, str] | None = None) -> WorkerConfig:
    env = os.environ if environ is None else environ
    redis_url = env.get("REDIS_URL") or DEFAULT_REDIS_URL
    poll = env.get("WORKER_POLL_INTERVAL")
    return WorkerConfig(
        redis_url=redis_url,
        producer_url=env.get("REDIS_PRODUCER_URL") or redis_url,
        queues=parse_queues(env.get("WORKER_QUEUES", "default")),
        concurrency=_number(env, "WORKER_CONCURRENCY", 5, int, minimum=1),
        shutdown_timeout=_number(env, "WORKER_SHUTDOWN_TIMEOUT", 25.0, float, minimum=0.5),
        poll_interval=_number(env, "WORKER_POLL_INTERVAL", 5.0, float, minimum=0.01)
        if poll
        else None,
        heartbeat_interval=_number(env, "WORKER_HEARTBEAT_INTERVAL", 5.0, float, minimum=0.1),
        heartbeat_ttl=_number(env, "WORKER_HEARTBEAT_TTL", 60, int, minimum=1),
        recovery_interval=_number(env, "WORKER_RECOVERY_INTERVAL", 30.0, float, minimum=0.1),
        tag=env.get("WORKER_TAG", ""),
        log_level=_log_level(env.get("WORKER_LOG_LEVEL", "info")),
        imports=tuple(filter(None, env.get("WORKER_IMPORT", "").split(","))),
    )


T = TypeVar("T", int, float)


def _number(env: Mapping[str, str], name: str, default: T, kind: type[T], *, minimum: T) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ConfigError(
            f"{name}: {raw!r} is not a{'n integer' if kind is int else ' number'}"
        ) from None
    if value < minimum:
        raise ConfigError(f"{name}: {raw!r} is below the minimum {minimum}")
    return value


def _log_level(raw: str) -> str:
    level = raw.strip().lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise ConfigError(f"WORKER_LOG_LEVEL: {raw!r}; expected debug, info, warning or error")
    return level
