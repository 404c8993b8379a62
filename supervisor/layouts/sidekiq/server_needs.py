"""The oldest server the fleet's Sidekiq accepts, from the versions its heartbeats carry.

Sidekiq 7+ writes its `version` into each process's heartbeat (`info` JSON); Sidekiq 8 refuses
Redis older than 7.0 (Valkey 7.2+ is fine), Sidekiq 7 Redis older than 6.2. A NEW below that
would stop the fleet's workers the moment they move, so `status` warns before anyone moves.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from supervisor.layouts.sidekiq import keys as sk

if TYPE_CHECKING:
    import redis

# Sidekiq major version -> (oldest Redis, oldest Valkey) it starts on.
NEEDS: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    8: ((7, 0), (7, 2)),
    7: ((6, 2), (7, 2)),
}
MAX_PROCESSES = 1000  # heartbeats read per look; a fleet's versions repeat long before this


def sidekiq_majors(client: redis.Redis, prefix: str = "") -> set[int]:
    """Major versions of the live Sidekiq processes whose heartbeat says it."""
    identities = sorted(client.smembers(prefix + sk.PROCESSES))[:MAX_PROCESSES]
    pipe = client.pipeline(transaction=False)
    for identity in identities:
        pipe.hget(prefix + _text(identity), "info")
    majors = set()
    for raw in pipe.execute(raise_on_error=False):
        major = _major(raw)
        if major is not None:
            majors.add(major)
    return majors


def version_warning(
    role: str, engine: str | None, version: str | None, majors: set[int]
) -> str | None:
    """Why `role`'s server (`engine` `version`, as HELLO says) is too old for the newest
    Sidekiq seen, or None."""
    needing = [major for major in sorted(majors, reverse=True) if major in NEEDS]
    parsed = _parse(version)
    if not needing or parsed is None:
        return None
    major = needing[0]
    redis_floor, valkey_floor = NEEDS[major]
    floor = valkey_floor if engine == "valkey" else redis_floor
    if parsed >= floor:
        return None
    engine = engine or "redis"
    return (
        f"{role} runs {engine} {version}, but the fleet runs Sidekiq {major}, which needs"
        f" {engine} {'.'.join(map(str, floor))} or later: upgrade {role} before moving"
    )


def _major(raw: object) -> int | None:
    if not isinstance(raw, bytes | str):
        return None
    try:
        document = json.loads(raw)
        version = document.get("version") if isinstance(document, dict) else None
        return int(str(version).split(".")[0]) if isinstance(version, str) else None
    except ValueError:
        return None


def _parse(version: str | None) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in (version or "").split(".")[:2]) or None
    except ValueError:
        return None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
