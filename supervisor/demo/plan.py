"""What `cointoss demo` will run, settled from options and `ecs/` before any process starts.

Pure apart from reading `ecs/`: the plan, the option checks, and the environment each task gets
(what ECS would hand the container), so they can be tested without starting anything.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from supervisor.demo.rollout_plan import DeploymentLimits, plan_rollout, weight_schedule
from supervisor.demo.taskdef import Mode, TaskTemplate, default_ecs_dir, load_ecs, secret_values
from supervisor.errors import UsageError
from supervisor.settings import parse_weight
from supervisor.toss.decide import Strategy

DEFAULT_JOBS = 16_000
DEFAULT_DEPLOYMENTS = 3
DEFAULT_KILLS = 2
DEFAULT_TIMEOUT_S = 110.0

# Demo pacing, not product defaults: the same knobs a real fleet has, turned down so that a
# killed task's in-flight jobs come back in seconds instead of a minute.
DEMO_TASK_ENV = {
    "MIGRATION_LOG_FORMAT": "json",
    "WORKER_LOG_LEVEL": "warning",
    "WORKER_HEARTBEAT_INTERVAL": "1",
    "WORKER_HEARTBEAT_TTL": "4",
    "WORKER_RECOVERY_INTERVAL": "1",
    "WORKER_POLL_INTERVAL": "1",
    "WORKER_SHUTDOWN_TIMEOUT": "5",
    "MIGRATION_STOP_TIMEOUT": "8",
    "MIGRATION_DRAIN_CHECK_INTERVAL": "1",
    "MIGRATION_DRAIN_CONFIRMATIONS": "2",
    "MIGRATION_DRAIN_JITTER": "2",
}


def positive_count(text: str) -> int:
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is below 1")
    return value


def count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def weight_option(text: str) -> float:
    try:
        return parse_weight(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{exc}; accepted: a number in [0, 1] or a percentage"
        ) from None


@dataclass(frozen=True)
class DemoPlan:
    """Everything the run needs to know, settled before anything starts."""

    template: TaskTemplate
    limits: DeploymentLimits
    mode: Mode
    strategy: Strategy
    weights: list[float]
    jobs: int
    kills: int
    seed: int | None
    timeout_s: float
    queues: tuple[str, ...]
    environ: Mapping[str, str]  # the demo's own start-up environment, which every task inherits


def make_plan(args: argparse.Namespace, environ: Mapping[str, str]) -> DemoPlan:
    """Options over the task definition over defaults; every check before any process starts."""
    template, limits = load_ecs(args.ecs_dir or default_ecs_dir())
    if args.tasks:
        limits = DeploymentLimits(
            args.tasks, limits.minimum_healthy_percent, limits.maximum_percent
        )
        plan_rollout(limits)  # the same one-line error as a bad service.json
    env = template.environment
    weight = (
        args.weight
        if args.weight is not None
        else parse_weight(env.get("MIGRATION_NEW_WEIGHT", "0.5"))
    )
    strategy = args.strategy or env.get("MIGRATION_STRATEGY", "random")
    if strategy not in ("random", "sticky", "even"):
        raise UsageError(
            f"task definition: MIGRATION_STRATEGY {strategy!r}; accepted: random, sticky or even"
        )
    if args.timeout <= 0:
        raise UsageError("--timeout: must be above 0")
    return DemoPlan(
        template=template,
        limits=limits,
        mode=args.mode or template.entry_point[1],  # type: ignore[arg-type]
        strategy=cast(Strategy, strategy),  # checked just above
        weights=weight_schedule(args.deployments, weight),
        jobs=args.jobs,
        kills=args.kills,
        seed=args.seed,
        timeout_s=args.timeout,
        queues=worker_queues(env.get("WORKER_QUEUES", "default")),
        environ=environ,
    )


def worker_queues(spec: str) -> tuple[str, ...]:
    """Queue names from `WORKER_QUEUES` (`critical:3,default:1`): where the backlog must go."""
    names = tuple(
        item.strip().rpartition(":")[0] or item.strip() for item in spec.split(",") if item.strip()
    )
    return names or ("default",)


def task_environment(
    base: Mapping[str, str],
    template: TaskTemplate,
    urls: Mapping[str, str],
    overrides: Mapping[str, str],
) -> dict[str, str]:
    """What ECS would give the container: the caller's basics (PATH...), the task definition's
    environment, the local URLs where the secrets would be, then the demo's overrides.
    """
    env = {
        name: value
        for name, value in base.items()
        if not name.startswith(("MIGRATION_", "ECS_", "WORKER_", "REDIS_"))
    }
    env.update(template.environment)
    env.update(secret_values(template, urls))
    env.update(overrides)
    return env
