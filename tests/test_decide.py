"""The pure decision: overrides, OLD's state, and the three strategies' statistics."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.toss.decide import Coin, OldState, decide, even_goes_new, sticky_draw

NEW, OLD = "redis://new:6379/0", "redis://old:6379/0"
WEIGHTS = st.floats(min_value=0.001, max_value=0.999, allow_nan=False)


def toss(weight: float, strategy: str = "random", old: OldState = OldState.BACKLOG, **coin: float):
    drawn = {"random_draw": 0.5, "sticky_draw": 0.5, **coin}
    return decide(
        weight=weight, strategy=strategy, old=old, coin=Coin(**drawn), new_url=NEW, old_url=OLD
    )


@pytest.mark.parametrize(
    ("weight", "strategy", "old", "coin", "side", "reason", "url"),
    [
        (0.0, "random", OldState.DRAINED, {}, "old", "weight_is_0", OLD),
        (0.0, "sticky", OldState.UNREACHABLE, {}, "old", "weight_is_0", OLD),
        (1.0, "random", OldState.BACKLOG, {"random_draw": 0.99}, "new", "weight_is_1", NEW),
        (1.0, "even", OldState.UNCHECKED, {"sequence": 2}, "new", "weight_is_1", NEW),
        (0.5, "random", OldState.UNREACHABLE, {"random_draw": 0.99}, "new", "old_unreachable", NEW),
        (0.5, "random", OldState.DRAINED, {"random_draw": 0.99}, "new", "old_drained", NEW),
        (0.5, "even", OldState.DRAINED, {"sequence": 2}, "new", "old_drained", NEW),
        (0.3, "random", OldState.BACKLOG, {"random_draw": 0.29}, "new", "coin", NEW),
        (0.3, "random", OldState.UNCHECKED, {"random_draw": 0.3}, "old", "coin", OLD),
        (
            0.3,
            "sticky",
            OldState.BACKLOG,
            {"sticky_draw": 0.1, "random_draw": 0.9},
            "new",
            "coin",
            NEW,
        ),
        (
            0.3,
            "sticky",
            OldState.BACKLOG,
            {"sticky_draw": 0.9, "random_draw": 0.1},
            "old",
            "coin",
            OLD,
        ),
        (0.5, "even", OldState.BACKLOG, {"sequence": 1}, "new", "even_sequence", NEW),
        (0.5, "even", OldState.BACKLOG, {"sequence": 2}, "old", "even_sequence", OLD),
    ],
)
def test_decision_table(weight, strategy, old, coin, side, reason, url) -> None:
    """Overrides beat OLD's state, OLD's state beats the coin, and the URL follows the side."""
    decision = toss(weight, strategy, old, **coin)
    assert (decision.side, decision.reason, decision.url) == (side, reason, url)
    assert decision.weight == weight


def test_overrides_and_settled_states_carry_no_draw() -> None:
    """A decision made without a toss reports draw None, so logs never show a fake coin."""
    assert toss(0.0).draw is None
    assert toss(1.0).draw is None
    assert toss(0.5, old=OldState.DRAINED).draw is None
    assert toss(0.5, random_draw=0.25).draw == 0.25


def test_even_without_a_sequence_falls_back_to_random_and_says_so() -> None:
    """When NEW could not hand out a slot, `even` tosses a fair coin reported as `random`."""
    decision = toss(0.3, "even", random_draw=0.1, sticky_draw=0.9)
    assert (decision.side, decision.strategy, decision.reason, decision.draw) == (
        "new",
        "random",
        "coin",
        0.1,
    )


def test_sticky_draws_are_uniform_over_many_tasks() -> None:
    """10,000 distinct task ARNs split like a fair coin at w=0.3 (no hash bias)."""
    n, weight = 10_000, 0.3
    arns = [f"arn:aws:ecs:eu-west-1:123456789012:task/prod/{i:032x}" for i in range(n)]
    on_new = sum(
        toss(weight, "sticky", sticky_draw=sticky_draw(a, "r1")).side == "new" for a in arns
    )
    assert abs(on_new - n * weight) < 5 * math.sqrt(n * weight * (1 - weight))


@given(key=st.text(min_size=1), salt=st.text(), low=WEIGHTS, high=WEIGHTS)
def test_sticky_raising_the_weight_only_moves_tasks_to_new(
    key: str, salt: str, low: float, high: float
) -> None:
    """Same task, same salt: same side every time, and a higher weight never sends it back to OLD."""
    low, high = min(low, high), max(low, high)
    draw = sticky_draw(key, salt)
    assert draw == sticky_draw(key, salt)
    assert 0 <= draw < 1
    before = toss(low, "sticky", sticky_draw=draw).side
    after = toss(high, "sticky", sticky_draw=draw).side
    assert not (before == "new" and after == "old")
    assert (before != after) == (low <= draw < high)


def test_sticky_salt_separates_rollouts() -> None:
    """A different rollout salt reshuffles tasks, so one unlucky task is not always first to move."""
    keys = [f"task-{i}" for i in range(200)]
    same = sum(sticky_draw(key, "a") < 0.5 and sticky_draw(key, "b") < 0.5 for key in keys)
    assert 20 < same < 80


def test_ten_tasks_at_point_three_put_exactly_three_on_new() -> None:
    """The `even` sequence 1..10 at w=0.3 sends exactly 3 tasks to NEW."""
    assert sum(even_goes_new(k, 0.3) for k in range(1, 11)) == 3


@given(
    count=st.integers(min_value=1, max_value=2_000),
    percent=st.integers(min_value=1, max_value=99),
    start=st.integers(min_value=1, max_value=10_000),
)
def test_even_splits_any_fleet_exactly_round_n_times_w(
    count: int, percent: int, start: int
) -> None:
    """N tasks counted from the start of a rollout split exactly round(N*w) on NEW, and
    any N consecutive tasks split within one of N*w."""
    weight = percent / 100
    on_new = sum(even_goes_new(k, weight) for k in range(1, count + 1))
    assert on_new == math.floor(count * percent / 100 + 0.5)
    window = sum(even_goes_new(k, weight) for k in range(start, start + count))
    assert abs(window - count * percent / 100) <= 1
