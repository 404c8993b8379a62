"""Reads the ECS task definition and service the demo runs, so the demo runs what ships.

Parsing is pure (dict in, record out); only `load_ecs` touches files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from supervisor.demo.rollout_plan import DeploymentLimits, check_limits
from supervisor.errors import ConfigError

TASK_DEFINITION_FILE = "task-definition.json"
SERVICE_FILE = "service.json"
Mode = Literal["exec", "supervise"]
_PYTHONS = ("python", "python3")


@dataclass(frozen=True)
class TaskTemplate:
    """The first container of a task definition: what every demo task runs."""

    family: str
    entry_point: tuple[str, ...]
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    secret_names: tuple[str, ...] = ()
    stop_timeout_s: float = 30.0


def default_ecs_dir() -> Path:
    """`ecs/` at the repository root: where `pip install -e .` leaves it."""
    return Path(__file__).resolve().parents[2] / "ecs"


def load_ecs(directory: Path) -> tuple[TaskTemplate, DeploymentLimits]:
    """Both files from `directory`, or a one-line ConfigError that says what is missing."""
    return (
        parse_task_definition(_read_json(directory / TASK_DEFINITION_FILE)),
        parse_service(_read_json(directory / SERVICE_FILE)),
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: not found; the demo runs the repository's ecs/ files"
            " (use a checkout installed with `pip install -e .`, or pass --ecs-dir DIR)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def parse_task_definition(document: Any) -> TaskTemplate:
    """The fields the demo needs from `containerDefinitions[0]`, checked."""
    if not isinstance(document, dict):
        raise ConfigError("task definition: not a JSON object")
    containers = document.get("containerDefinitions")
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        raise ConfigError("task definition: containerDefinitions[0] is missing")
    container = containers[0]
    entry_point = _strings(container.get("entryPoint", []), "entryPoint")
    if entry_point[:1] != ("cointoss",):
        raise ConfigError(
            "task definition: entryPoint does not start with cointoss; accepted: "
            '["cointoss", "exec", "--"] or ["cointoss", "supervise", "--"]'
        )
    if len(entry_point) < 2:
        raise ConfigError("task definition: entryPoint runs cointoss without exec or supervise")
    return TaskTemplate(
        family=str(document.get("family") or "cointoss-demo"),
        entry_point=entry_point,
        command=_strings(container.get("command", []), "command"),
        environment=_pairs(container.get("environment", []), "environment", "value"),
        secret_names=tuple(_pairs(container.get("secrets", []), "secrets", "valueFrom")),
        stop_timeout_s=float(container.get("stopTimeout") or 30),
    )


def parse_service(document: Any) -> DeploymentLimits:
    """`desiredCount` and `deploymentConfiguration`, with ECS's defaults (100 / 200)."""
    if not isinstance(document, dict):
        raise ConfigError("service: not a JSON object")
    config = document.get("deploymentConfiguration") or {}
    try:
        limits = DeploymentLimits(
            desired=int(document.get("desiredCount", 1)),
            minimum_healthy_percent=int(config.get("minimumHealthyPercent", 100)),
            maximum_percent=int(config.get("maximumPercent", 200)),
        )
    except (TypeError, ValueError, AttributeError):
        raise ConfigError(
            "service: desiredCount and deploymentConfiguration must be numbers"
        ) from None
    check_limits(limits)
    return limits


def task_argv(template: TaskTemplate, mode: Mode, python: str) -> list[str]:
    """entryPoint + command as a local process: `cointoss` and `python` become this interpreter,
    so the demo runs the same code whether installed or run from a checkout.
    """
    _cointoss, subcommand, *rest = template.entry_point
    if subcommand not in ("exec", "supervise"):
        raise ConfigError(f"task definition: entryPoint runs cointoss {subcommand}; expected exec")
    command = list(template.command)
    if command[:1] and command[0] in _PYTHONS:
        command[0] = python
    return [python, "-m", "supervisor", mode, *rest, *command]


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"task definition: {name} must be a non-empty list of strings")
    return tuple(value)


def _pairs(value: Any, name: str, value_key: str) -> dict[str, str]:
    """ECS's [{name, value}] lists as a dict (later entries win, as in Docker)."""
    if not isinstance(value, list) or not all(
        isinstance(item, dict) and isinstance(item.get("name"), str) for item in value
    ):
        raise ConfigError(f"task definition: {name} must be a list of {{name, {value_key}}}")
    return {item["name"]: str(item.get(value_key, "")) for item in value}


def secret_values(template: TaskTemplate, urls: Mapping[str, str]) -> dict[str, str]:
    """Local values in place of the task definition's secrets; a secret we cannot stand in for
    is an error, since the worker would start without it.
    """
    missing: Sequence[str] = [name for name in template.secret_names if name not in urls]
    if missing:
        raise ConfigError(f"task definition: no local stand-in for secret(s) {', '.join(missing)}")
    return {name: urls[name] for name in template.secret_names}
