"""How far a fleet's split may stray from its weight before it is worth a second look.

n tasks each toss a coin that lands NEW with probability w, so the NEW count is Binomial(n, w).
`binomial_interval` gives the exact equal-tailed range of counts that holds at least 95 % of that
distribution: a count outside it happens by chance less than 5 % of the time. Standard library
only (log-gamma for the probabilities), exact for any n a fleet can have.
"""

from __future__ import annotations

import math

LEVEL = 0.95


def binomial_interval(n: int, weight: float, level: float = LEVEL) -> tuple[int, int]:
    """The smallest equal-tailed [low, high] with P(X < low) <= tail and P(X > high) <= tail.

    Args:
        n: tasks that tossed the coin (n >= 0).
        weight: the chance of NEW per toss, in [0, 1].
        level: the share of the distribution kept; each tail gets (1 - level) / 2.

    Returns:
        (low, high) counts of NEW, inclusive.
    """
    if n < 0 or not 0 <= weight <= 1 or not 0 < level < 1:
        raise ValueError("need n >= 0, 0 <= weight <= 1 and 0 < level < 1")
    if weight == 0 or n == 0:
        return 0, 0
    if weight == 1:
        return n, n
    tail = (1 - level) / 2
    low = high = None
    cumulative = 0.0
    for k in range(n + 1):
        cumulative += _pmf(n, k, weight)
        if low is None and cumulative > tail:
            low = k
        if cumulative >= 1 - tail:
            high = k
            break
    assert low is not None  # the pmf sums to 1, so the cumulative sum passes the low tail
    return low, n if high is None else high


def _pmf(n: int, k: int, weight: float) -> float:
    log_p = (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(weight)
        + (n - k) * math.log1p(-weight)
    )
    return math.exp(log_p)
