"""How ECS replaces a service's tasks in a rolling deployment, worked out ahead as a pure plan.

The demo follows this plan step by step, so its deployments keep the same promises ECS keeps:
never fewer healthy tasks than `minimumHealthyPercent` (rounded up), never more running tasks
than `maximumPercent` (rounded down). Also the arithmetic of what each deployment should show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from supervisor.errors import ConfigError
from supervisor.toss.decide import Strategy, even_goes_new


@dataclass(frozen=True)
class DeploymentLimits:
    """A service's `desiredCount` and `deploymentConfiguration`, as ECS reads them."""

    desired: int
    minimum_healthy_percent: int = 100
    maximum_percent: int = 200

    @property
    def min_healthy(self) -> int:
        return math.ceil(self.desired * self.minimum_healthy_percent / 100)

    @property
    def max_running(self) -> int:
        return math.floor(self.desired * self.maximum_percent / 100)


@dataclass(frozen=True)
class Step:
    """Stop `stop_old` tasks of the previous revision, start `start_new`; `old`/`new` are after it."""

    stop_old: int
    start_new: int
    old: int
    new: int


def check_limits(limits: DeploymentLimits) -> None:
    """ECS's own rules, plus the one that makes a deployment possible at all."""
    if limits.desired < 1:
        raise ConfigError(f"service desiredCount: {limits.desired} is below 1; accepted: 1 or more")
    if not 0 <= limits.minimum_healthy_percent <= 100:
        raise ConfigError(
            f"service minimumHealthyPercent: {limits.minimum_healthy_percent} is out of range;"
            " accepted: 0 to 100"
        )
    if limits.maximum_percent < 100:
        raise ConfigError(
            f"service maximumPercent: {limits.maximum_percent} is below 100; accepted: 100 or more"
        )
    if limits.min_healthy >= limits.desired and limits.max_running <= limits.desired:
        raise ConfigError(
            f"service deploymentConfiguration: minimumHealthyPercent {limits.minimum_healthy_percent}"
            f" and maximumPercent {limits.maximum_percent} leave no room to replace any of"
            f" {limits.desired} tasks; lower the minimum or raise the maximum"
        )


def plan_rollout(limits: DeploymentLimits) -> list[Step]:
    """Steps from `desired` old tasks to `desired` new ones.

    Each step stops as many old tasks as the healthy floor allows (new tasks from earlier steps
    count as healthy, those started in this step do not yet) and starts as many new tasks as the
    running ceiling allows after those stops.

    Raises:
        ConfigError: the limits are invalid or allow no progress.
    """
    check_limits(limits)
    old, new, steps = limits.desired, 0, []
    while old > 0 or new < limits.desired:
        stop = max(0, min(old, old + new - limits.min_healthy))
        start = max(0, min(limits.desired - new, limits.max_running - (old - stop + new)))
        old, new = old - stop, new + start
        steps.append(Step(stop, start, old, new))
    return steps


def weight_schedule(deployments: int, weight: float) -> list[float]:
    """The weight of each revision: the first fleet and every rolling deployment but the last run
    at `weight`; the last one cuts over at 1, as the runbook's final step does.
    """
    return [weight] * deployments + [1.0] if deployments > 0 else [weight]


def expected_new(strategy: Strategy, weight: float, tasks: int) -> float:
    """How many of `tasks` fresh tasks should pick NEW: exact for `even`, the mean otherwise."""
    if weight >= 1 or weight <= 0:
        return float(tasks) if weight >= 1 else 0.0
    if strategy == "even":
        return float(sum(even_goes_new(k, weight) for k in range(1, tasks + 1)))
    return tasks * weight
