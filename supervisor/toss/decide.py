"""The coin itself: a pure function from what is known at start-up to the side a worker consumes.

No Redis, no clock, no environment: every input is passed in, so a table of cases pins it down.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Literal

Side = Literal["new", "old"]
Strategy = Literal["random", "sticky", "even"]
_EVEN_SCALE = 10**9  # weights are exact to a billionth in the `even` split


class OldState(Enum):
    """What the pre-toss look at OLD found (UNCHECKED when checks are off)."""

    UNCHECKED = "unchecked"
    BACKLOG = "backlog"
    DRAINED = "drained"
    UNREACHABLE = "unreachable"

    @property
    def allows_toss(self) -> bool:
        """DRAINED and UNREACHABLE settle the side before any coin is needed."""
        return self not in (OldState.DRAINED, OldState.UNREACHABLE)


@dataclass(frozen=True)
class Decision:
    """One worker life's choice; `draw` is the number compared with the weight (None: no toss)."""

    side: Side
    url: str
    reason: str
    draw: float | None
    strategy: Strategy
    weight: float


@dataclass(frozen=True)
class Coin:
    """The random material behind a toss, gathered by the caller."""

    random_draw: float
    sticky_draw: float
    sequence: int | None = None


def sticky_draw(key: str, salt: str) -> float:
    """A stable number in [0, 1) per task: raising the weight only moves tasks in the added band."""
    digest = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def even_goes_new(sequence: int, weight: float) -> bool:
    """Task k (from 1) goes NEW iff round(k*w) > round((k-1)*w): the first N split exactly
    round(N*w) / rest, and any N in a row within one of N*w.

    Integer arithmetic on the weight in billionths, rounding half up: `k * 0.29` in floats is
    28.999... at k=100, which would put one task too few on NEW.
    """
    scaled = round(weight * _EVEN_SCALE)

    def rounded(k: int) -> int:
        return (2 * k * scaled + _EVEN_SCALE) // (2 * _EVEN_SCALE)

    return rounded(sequence) > rounded(sequence - 1)


def decide(
    *,
    weight: float,
    strategy: Strategy,
    old: OldState,
    coin: Coin,
    new_url: str,
    old_url: str | None,
) -> Decision:
    """Weight overrides first, then what OLD looked like, then the strategy's toss."""

    def choose(
        side: Side, reason: str, draw: float | None = None, used: Strategy = strategy
    ) -> Decision:
        url = new_url if side == "new" or old_url is None else old_url
        return Decision(side, url, reason, draw, used, weight)

    if weight <= 0:
        return choose("old", "weight_is_0")
    if weight >= 1:
        return choose("new", "weight_is_1")
    if old is OldState.UNREACHABLE:
        return choose("new", "old_unreachable")
    if old is OldState.DRAINED:
        return choose("new", "old_drained")
    if strategy == "even" and coin.sequence is not None:
        side: Side = "new" if even_goes_new(coin.sequence, weight) else "old"
        return choose(side, "even_sequence", float(coin.sequence))
    if strategy == "sticky":
        return choose("new" if coin.sticky_draw < weight else "old", "coin", coin.sticky_draw)
    # `even` without a sequence (NEW unreachable for the counter) degrades to a fair random toss
    side = "new" if coin.random_draw < weight else "old"
    return choose(side, "coin", coin.random_draw, used="random")
