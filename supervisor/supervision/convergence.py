"""When a worker on OLD should move to NEW: K drained checks in a row, then a jittered pause.

Pure: the checks' results, the random source and the settings come in as arguments.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from supervisor.layouts.base import Consumer, QuietSpan
from supervisor.settings import Settings
from supervisor.toss.decide import Coin, Decision, OldState, decide


@dataclass(frozen=True)
class Confirmations:
    """Consecutive drained checks; any other result (backlog, or OLD unreadable) starts over.

    Confirmed after `needed` of them, once they also span two beats of every process still
    live on OLD: its `busy` lags up to one beat behind what it runs.
    """

    needed: int
    count: int = 0
    span: QuietSpan = field(default_factory=QuietSpan)
    spanned: bool = False

    def observe(
        self, drained: bool | None, heartbeats: Iterable[Consumer] = (), now: float = 0.0
    ) -> Confirmations:
        """`drained` is None when the check failed: an unknown OLD is never counted as drained.

        `heartbeats` are OLD's live consumers at this check, `now` the caller's clock.
        """
        span = self.span.observe(bool(drained), heartbeats, now)
        return Confirmations(self.needed, self.count + 1 if drained else 0, span, span.covers(now))

    @property
    def confirmed(self) -> bool:
        return self.count >= self.needed and self.spanned


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
