"""Sidekiq process heartbeats: which processes are alive, and when "nothing runs" can be trusted.

Every Sidekiq version writes `<identity>` (fields `info`, `busy`, `beat`, `quiet`) and EXPIREs it
60 s after each beat; 6.x beats every 5 s, 7.x and 8.x every 10 s (their `info` JSON carries
`version`). Two consequences for anyone deciding that nothing runs on a Redis:

- `busy` is only as fresh as the last beat, so a job fetched just after a beat stays invisible
  for a whole period. A "nothing runs" decision must see every live process beat twice while
  the looks stay quiet (`QuietSpan`).
- A hash that lost its TTL (dump/restore, a copy tool that drops TTLs, PERSIST) never expires:
  its process is long dead but would count as live, and its `busy` forever. A heartbeat without
  TTL whose `beat` is older than the heartbeat's own expiry is a ghost, not a process.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from supervisor.layouts.base import Consumer, count, text
from supervisor.layouts.sidekiq import keys as sk

if TYPE_CHECKING:
    import redis

HEARTBEAT_EXPIRY_S = 60.0  # Sidekiq 6.x to 8.x: EXPIRE 60 after every beat
BEAT_6_S = 5.0  # 6.x (and any heartbeat whose `info` has no `version`)
BEAT_7_S = 10.0  # 7.x and 8.x; also assumed for a `version` that is not a Sidekiq number
_MAJOR = re.compile(r"(\d+)\.")


@dataclass(frozen=True)
class Heartbeat:
    """One member of `processes` whose `<identity>` hash exists."""

    identity: str
    busy: int
    quiet: bool
    beat: float | None  # epoch seconds of the last beat; None when missing or unreadable
    version: str | None  # `info.version` (7.x+), None for 6.x
    expires: bool  # the hash has a TTL, as every Sidekiq writes it

    @property
    def period_s(self) -> float:
        """How often this process beats, as its version does."""
        return beat_period_s(self.version)

    def beat_age_s(self, now: float) -> float | None:
        return None if self.beat is None else now - self.beat

    def consumer(self) -> Consumer:
        """As the layout interface shows a live process: its beat says how fresh `busy` is."""
        return Consumer(self.identity, self.busy, self.quiet, self.beat, self.period_s)

    def ghost(self, now: float) -> bool:
        """Dead for sure: nothing renews the hash (no TTL) and its last beat is past expiry."""
        age = self.beat_age_s(now)
        return not self.expires and age is not None and age > HEARTBEAT_EXPIRY_S


def beat_period_s(version: str | None) -> float:
    """6.x beats every 5 s, 7.x and 8.x every 10 s; an unknown writer gets the slowest known."""
    if version is None:
        return BEAT_6_S
    found = _MAJOR.match(version)
    if found is None:
        return BEAT_7_S
    return BEAT_6_S if int(found.group(1)) <= 6 else BEAT_7_S


def read_heartbeats(client: redis.Redis, prefix: str = "") -> list[Heartbeat]:
    """Every listed process whose hash exists, in pipelined round trips; ghosts included."""
    identities = sorted(text(p) for p in client.smembers(prefix + sk.PROCESSES))
    if not identities:
        return []
    pipe = client.pipeline(transaction=False)
    for identity in identities:
        pipe.hmget(
            prefix + identity,
            [sk.HEARTBEAT_BUSY_FIELD, sk.HEARTBEAT_QUIET_FIELD, sk.HEARTBEAT_BEAT_FIELD, "info"],
        )
        pipe.pttl(prefix + identity)
    replies = pipe.execute(raise_on_error=False)
    for reply in replies:  # a refused PTTL or HMGET must not make busy processes invisible
        if isinstance(reply, Exception) and not str(reply).startswith("WRONGTYPE"):
            raise reply
    found = []
    for identity, fields, ttl in zip(identities, replies[::2], replies[1::2], strict=True):
        if not isinstance(ttl, int) or ttl == -2:  # -2: no such key; an error is not an int
            continue
        busy_raw, quiet_raw, beat_raw, info_raw = (
            fields if isinstance(fields, list) else (b"1", None, None, None)
        )
        found.append(
            Heartbeat(
                identity=identity,
                busy=count(busy_raw, unreadable=1),  # the safe error: 'not drained yet'
                quiet=quiet_raw == b"true",
                beat=_seconds(beat_raw),
                version=_version(info_raw),
                expires=ttl != -1,
            )
        )
    return found


def alive(heartbeats: Iterable[Heartbeat], now: float) -> list[Heartbeat]:
    return [beat for beat in heartbeats if not beat.ghost(now)]


def ghosts(heartbeats: Iterable[Heartbeat], now: float) -> list[Heartbeat]:
    return [beat for beat in heartbeats if beat.ghost(now)]


def _seconds(raw: bytes | None) -> float | None:
    """`beat` is a float epoch-seconds string in every version."""
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _version(raw: bytes | None) -> str | None:
    try:
        info = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    version = info.get("version") if isinstance(info, dict) else None
    return str(version) if version is not None else None
