"""What to do when the child dies on its own: restart after a backoff, give up, or finish.

Pure: the caller passes the clock and the history, so a table of cases pins the policy down.
Give-up exits with the child's code, so that ECS (whose restartPolicy or service scheduler is the
next level up) sees a failed container and replaces the task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 32.0  # 1, 2, 4, 8, 16, 32, 32 ... seconds


@dataclass(frozen=True)
class RestartPolicy:
    """MIGRATION_MAX_RESTARTS restarts within any MIGRATION_RESTART_WINDOW seconds; 0 = never."""

    max_restarts: int
    window_s: float
    first_delay_s: float = FIRST_DELAY_S
    max_delay_s: float = MAX_DELAY_S


@dataclass(frozen=True)
class Finish:
    """The child ended deliberately (exit 0): the supervisor ends too, with 0."""

    exit_code: int = 0


@dataclass(frozen=True)
class Restart:
    """Start a new child after `delay_s`; `attempt` counts restarts in the current window, from 1."""

    delay_s: float
    attempt: int


@dataclass(frozen=True)
class GiveUp:
    """Too many deaths in the window: exit with the child's code so the orchestrator takes over."""

    exit_code: int
    restarts_in_window: int


Outcome = Finish | Restart | GiveUp


def backoff_delay(policy: RestartPolicy, earlier_restarts: int) -> float:
    """1, 2, 4 ... seconds, capped: the n-th restart in a window waits first * 2**(n-1)."""
    exponent = min(max(earlier_restarts, 0), 30)  # far past any cap; keeps the float finite
    return float(min(policy.first_delay_s * 2**exponent, policy.max_delay_s))


def in_window(policy: RestartPolicy, history: Sequence[float], now: float) -> list[float]:
    """The restarts that still count: those less than `window_s` ago."""
    return [t for t in history if now - t < policy.window_s]


def after_exit(
    policy: RestartPolicy, history: Sequence[float], now: float, exit_code: int
) -> Outcome:
    """Exit 0 finishes; any other end is unexpected and restarts until the window's budget is spent.

    `history` holds the times of earlier restarts (the caller appends `now` when it restarts).
    """
    if exit_code == 0:
        return Finish()
    recent = in_window(policy, history, now)
    if len(recent) >= policy.max_restarts:
        return GiveUp(exit_code, len(recent))
    return Restart(backoff_delay(policy, len(recent)), len(recent) + 1)
