"""The rolling-deployment planner keeps ECS's promises, and the demo's expectations are exact."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.demo.rollout_plan import (
    DeploymentLimits,
    Step,
    expected_new,
    plan_rollout,
    weight_schedule,
)
from supervisor.errors import ConfigError


class TestPlanRollout:
    @pytest.mark.parametrize(
        ("limits", "steps"),
        [
            # the shipped service: 100/200 starts all new first, then stops all old
            (DeploymentLimits(10, 100, 200), [Step(0, 10, 10, 10), Step(10, 0, 0, 10)]),
            (DeploymentLimits(4, 50, 200), [Step(2, 4, 2, 4), Step(2, 0, 0, 4)]),
            (DeploymentLimits(4, 50, 100), [Step(2, 2, 2, 2), Step(2, 2, 0, 4)]),
            (DeploymentLimits(3, 50, 150), [Step(1, 2, 2, 2), Step(2, 1, 0, 3)]),
            (DeploymentLimits(1, 0, 100), [Step(1, 1, 0, 1)]),
            (DeploymentLimits(1, 100, 200), [Step(0, 1, 1, 1), Step(1, 0, 0, 1)]),
            (
                DeploymentLimits(3, 100, 134),
                [Step(0, 1, 3, 1), Step(1, 1, 2, 2), Step(1, 1, 1, 3), Step(1, 0, 0, 3)],
            ),
        ],
    )
    def test_steps_for_known_services(self, limits: DeploymentLimits, steps: list[Step]) -> None:
        """Each service shape gives the step sequence ECS would follow."""
        assert plan_rollout(limits) == steps

    @given(
        desired=st.integers(1, 40),
        minimum=st.integers(0, 100),
        maximum=st.integers(100, 300),
    )
    def test_never_breaks_the_limits_and_always_finishes(
        self, desired: int, minimum: int, maximum: int
    ) -> None:
        """Healthy tasks never drop below the floor, running tasks never exceed the ceiling."""
        limits = DeploymentLimits(desired, minimum, maximum)
        if limits.min_healthy >= desired and limits.max_running <= desired:
            with pytest.raises(ConfigError, match="no room"):
                plan_rollout(limits)
            return
        old, new = desired, 0
        steps = plan_rollout(limits)
        for step in steps:
            assert old - step.stop_old + new >= min(limits.min_healthy, old + new)
            assert old - step.stop_old + new + step.start_new <= max(limits.max_running, desired)
            old, new = old - step.stop_old, new + step.start_new
            assert (old, new) == (step.old, step.new)
        assert (old, new) == (0, desired)
        assert len(steps) <= 2 * desired + 1

    @pytest.mark.parametrize(
        ("limits", "message"),
        [
            (DeploymentLimits(0, 50, 200), "desiredCount: 0 is below 1"),
            (DeploymentLimits(4, 120, 200), "minimumHealthyPercent: 120 is out of range"),
            (DeploymentLimits(4, 50, 90), "maximumPercent: 90 is below 100"),
            (DeploymentLimits(4, 100, 100), "leave no room to replace any of 4 tasks"),
        ],
    )
    def test_rejects_impossible_services(self, limits: DeploymentLimits, message: str) -> None:
        """A service ECS would refuse, or one that can never deploy, is a one-line ConfigError."""
        with pytest.raises(ConfigError, match=message):
            plan_rollout(limits)


class TestExpectations:
    @pytest.mark.parametrize(
        ("deployments", "weight", "weights"),
        [
            (0, 0.5, [0.5]),
            (1, 0.3, [0.3, 1.0]),
            (3, 0.5, [0.5, 0.5, 0.5, 1.0]),
        ],
    )
    def test_weight_schedule_ends_with_the_cut_over(
        self, deployments: int, weight: float, weights: list[float]
    ) -> None:
        """The first fleet and all but the last deployment use the weight; the last one uses 1."""
        assert weight_schedule(deployments, weight) == weights

    @pytest.mark.parametrize(
        ("strategy", "weight", "tasks", "expected"),
        [
            ("random", 0.5, 10, 5.0),
            ("sticky", 0.3, 4, 1.2),
            ("even", 0.3, 4, 1.0),
            ("even", 0.5, 5, 3.0),  # round half up
            ("even", 0.75, 4, 3.0),
            ("random", 1.0, 7, 7.0),
            ("even", 0.0, 7, 0.0),
        ],
    )
    def test_expected_new(self, strategy: str, weight: float, tasks: int, expected: float) -> None:
        """`even` expects its exact split, the coin strategies their mean."""
        assert expected_new(strategy, weight, tasks) == pytest.approx(expected)  # type: ignore[arg-type]
