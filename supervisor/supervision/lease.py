"""A lock with expiry on one Redis key: SET NX PX with an owner token, renewed and released by compare.

Whoever holds the token may renew or release; a holder that died simply lets it expire. Renew and
release are Lua so that "is it still mine?" and the change happen in one step.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

RENEW_LUA = """
local key, owner, ttl_ms = KEYS[1], ARGV[1], ARGV[2]
if redis.call('GET', key) == owner then
    return redis.call('PEXPIRE', key, ttl_ms)
end
return 0
"""

RELEASE_LUA = """
local key, owner = KEYS[1], ARGV[1]
if redis.call('GET', key) == owner then
    return redis.call('DEL', key)
end
return 0
"""


def owner_token() -> str:
    """Unique per holder, and readable in `GET` when an operator wonders who holds the lock."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


class Lease:
    """One holder at a time of `key`; the lock vanishes `ttl_ms` after the last acquire or renew."""

    def __init__(
        self, client: redis.Redis, key: str, ttl_ms: int, owner: str | None = None
    ) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.owner = owner or owner_token()
        self._renew = client.register_script(RENEW_LUA)
        self._release = client.register_script(RELEASE_LUA)

    def acquire(self) -> bool:
        """True when we now hold the lock; False when someone else does."""
        return bool(self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        """Pushes the expiry back; False means the lock expired and is no longer ours."""
        return bool(self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    def release(self) -> bool:
        """Deletes the lock only if it is still ours (never someone else's after our expiry)."""
        return bool(self._release(keys=[self.key], args=[self.owner]))
