"""Redis outages: every thread backs off and retries; the process logs each outage once."""

from __future__ import annotations

import random
import threading
from typing import Any

BASE_DELAY_S = 0.1
MAX_DELAY_S = 5.0


class Backoff:
    """Exponential delay with jitter, per thread; `reset` after a success."""

    def __init__(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(MAX_DELAY_S, BASE_DELAY_S * 2**self.failures)
        self.failures += 1
        return delay * (0.5 + random.random() / 2)

    def reset(self) -> None:
        self.failures = 0


class OutageLog:
    """One `redis_unavailable` when an outage starts, one `redis_reconnected` when it ends."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self._down = False
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self._down

    def failed(self, exc: Exception, where: str) -> None:
        with self._lock:
            if self._down:
                return
            self._down = True
        self.log.warning("redis_unavailable", where=where, error=str(exc))

    def succeeded(self) -> None:
        if not self._down:
            return
        with self._lock:
            if not self._down:
                return
            self._down = False
        self.log.info("redis_reconnected")
