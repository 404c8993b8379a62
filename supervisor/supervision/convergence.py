"""When a worker on OLD should move to NEW: K drained checks in a row, then a jittered pause.

Pure: the checks' results, the random source and the settings come in as arguments.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from supervisor.settings import Settings
from supervisor.toss.decide import Coin, Decision, OldState, decide


@dataclass(frozen=True)
class Confirmations:
    """Consecutive drained checks; any other result (backlog, or OLD unreadable) starts over."""

    needed: int
    count: int = 0

    def observe(self, drained: bool | None) -> Confirmations:
        """`drained` is None when the check failed: an unknown OLD is never counted as drained."""
        return Confirmations(self.needed, self.count + 1 if drained else 0)

    @property
    def confirmed(self) -> bool:
        return self.count >= self.needed


def jitter_delay(rng: random.Random, max_s: float) -> float:
    """A uniform pause in [0, max_s] so that a fleet that saw OLD drain together restarts spread out."""
    return rng.uniform(0.0, max_s) if max_s > 0 else 0.0


def drained_decision(settings: Settings) -> Decision:
    """The NEW decision with reason `old_drained`, as the toss itself gives when OLD is drained.

    Built directly because K confirmations outweigh one more look at OLD: a retry that a worker
    elsewhere adds to OLD meanwhile is the mover's to carry, not a reason to stay on OLD.
    """
    return decide(
        weight=settings.new_weight,
        strategy=settings.strategy,
        old=OldState.DRAINED,
        coin=Coin(random_draw=1.0, sticky_draw=1.0),
        new_url=settings.new_redis_url,
        old_url=settings.old_redis_url,
    )
