"""What a server says about itself: engine, version, cluster mode, role, eviction policy.

HELLO (Redis 6.0+, every Valkey) states engine, version, mode and role the same way on every
build, and ElastiCache's usual user (`+@all -@dangerous`) may run it; INFO is `@dangerous`, and
Valkey 8+ renamed INFO's `redis_mode` to `server_mode`. So HELLO comes first, INFO only when
HELLO is refused and INFO is permitted, and `maxmemory-policy` (which only INFO and CONFIG show)
is read from INFO, else CONFIG GET, else left unknown with a note saying what would show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from supervisor.servers.refusals import is_refusal

if TYPE_CHECKING:
    import redis

REPLICA_ROLES = frozenset({"replica", "slave"})


@dataclass(frozen=True)
class ServerFacts:
    """None means unknown; `notes` say which facts are unknown and which permission shows them."""

    engine: str | None = None  # "redis" or "valkey"
    version: str | None = None
    mode: str | None = None  # "standalone", "cluster" or "sentinel"
    role: str | None = None  # "master" or "replica"
    maxmemory_policy: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def cluster(self) -> bool:
        return self.mode == "cluster"

    @property
    def read_only(self) -> bool:
        return self.role in REPLICA_ROLES


def read_facts(client: redis.Redis, *, policy: bool = True) -> ServerFacts:
    """Asks the server; a refused question leaves a fact unknown, any other error propagates.

    `policy=False` skips `maxmemory-policy` (the pre-toss check only needs the role).
    """
    hello = _ask(client, "HELLO")
    info = None if isinstance(hello, dict) else _ask(client, "INFO", "server", "replication")
    said = _from_hello(hello) if isinstance(hello, dict) else _from_info(info)
    notes = []
    if not said.get("version"):
        notes.append("server version and role unknown: grant +hello (or +info) to see them")
    maxmemory = _maxmemory_policy(client) if policy else None
    if policy and maxmemory is None:
        notes.append(
            "maxmemory-policy unknown: this user may run neither INFO nor CONFIG GET;"
            " grant +info to see it (Sidekiq needs noeviction)"
        )
    return ServerFacts(**said, maxmemory_policy=maxmemory, notes=tuple(notes))


def _ask(client: redis.Redis, *command: str) -> Any:
    """The reply, or None when the server refuses the command (NOPERM, renamed, too old)."""
    import redis

    try:
        return client.execute_command(*command)
    except redis.ResponseError as exc:
        if is_refusal(exc):
            return None
        raise


def _from_hello(reply: dict[Any, Any]) -> dict[str, str | None]:
    said = {_text(key): _text(value) for key, value in reply.items() if key != b"modules"}
    return {
        "engine": said.get("server"),
        "version": said.get("version"),
        "mode": said.get("mode"),
        "role": _role(said.get("role")),
    }


def _from_info(info: Any) -> dict[str, str | None]:
    if not isinstance(info, dict):
        return {}
    fields = {str(key): str(value) for key, value in info.items()}
    return {
        "engine": fields.get("server_name", "redis"),
        "version": fields.get("valkey_version") or fields.get("redis_version"),
        "mode": fields.get("server_mode") or fields.get("redis_mode"),
        "role": _role(fields.get("role")),
    }


def _maxmemory_policy(client: redis.Redis) -> str | None:
    memory = _ask(client, "INFO", "memory")
    if isinstance(memory, dict) and memory.get("maxmemory_policy"):
        return str(memory["maxmemory_policy"])
    config = _ask(client, "CONFIG", "GET", "maxmemory-policy")
    if isinstance(config, dict):
        values = [_text(value) for value in config.values()]
        return values[0] if values else None
    if isinstance(config, list) and len(config) == 2:
        return _text(config[1])
    return None


def _role(raw: str | None) -> str | None:
    return "replica" if raw in REPLICA_ROLES else raw


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
