"""Whether two clients reach the same server and database, without INFO.

INFO's `run_id` would tell, but ElastiCache's usual user may not run INFO, and a proxy may hide
it; an address comparison misses `localhost` against `127.0.0.1`. A short-lived random key
written through one client and looked for through the other works on every server and needs
only what `migrate` needs anyway (writes under `cointoss:migrate:`).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from supervisor import constants as k

if TYPE_CHECKING:
    import redis

PROBE_TTL_MS = 60_000  # a probe a crash leaves behind disappears by itself


def same_database(writer: redis.Redis, reader: redis.Redis) -> bool:
    """True when a key written through `writer` is visible through `reader` at once."""
    probe = k.SAME_SERVER_PROBE_PREFIX + uuid.uuid4().hex
    writer.set(probe, b"1", px=PROBE_TTL_MS, nx=True)
    try:
        return bool(reader.exists(probe))
    finally:
        writer.delete(probe)
