"""The demo runs what the repository ships: its ECS task definition and service, read strictly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supervisor.demo.plan import task_environment, worker_queues
from supervisor.demo.rollout_plan import DeploymentLimits
from supervisor.demo.taskdef import (
    TaskTemplate,
    default_ecs_dir,
    load_ecs,
    parse_service,
    parse_task_definition,
    secret_values,
    task_argv,
)
from supervisor.errors import ConfigError

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"


def task_definition(**container: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "entryPoint": ["cointoss", "exec", "--"],
        "command": ["python", "-m", "worker_app"],
        "environment": [{"name": "MIGRATION_NEW_WEIGHT", "value": "0.5"}],
        "secrets": [
            {"name": "MIGRATION_NEW_REDIS_URL", "valueFrom": ARN},
            {"name": "MIGRATION_OLD_REDIS_URL", "valueFrom": ARN},
        ],
    }
    base.update(container)
    return {"family": "fam", "containerDefinitions": [base]}


class TestTaskDefinition:
    def test_reads_the_first_container(self) -> None:
        """entryPoint, command, environment, secret names, family and stopTimeout come through."""
        template = parse_task_definition(task_definition(stopTimeout=60))
        assert template == TaskTemplate(
            family="fam",
            entry_point=("cointoss", "exec", "--"),
            command=("python", "-m", "worker_app"),
            environment={"MIGRATION_NEW_WEIGHT": "0.5"},
            secret_names=("MIGRATION_NEW_REDIS_URL", "MIGRATION_OLD_REDIS_URL"),
            stop_timeout_s=60.0,
        )

    @pytest.mark.parametrize(
        ("document", "message"),
        [
            ([], "not a JSON object"),
            ({"containerDefinitions": []}, r"containerDefinitions\[0\] is missing"),
            (task_definition(entryPoint=["tini", "--"]), "entryPoint does not start with cointoss"),
            (task_definition(entryPoint=["cointoss"]), "entryPoint runs cointoss without exec"),
            (task_definition(command="python -m worker_app"), "command must be a non-empty list"),
            (task_definition(environment=[{"value": "x"}]), "environment must be a list"),
        ],
    )
    def test_rejects_what_it_cannot_run(self, document: Any, message: str) -> None:
        """A task definition the demo cannot turn into a process is a one-line ConfigError."""
        with pytest.raises(ConfigError, match=message):
            parse_task_definition(document)

    @pytest.mark.parametrize(
        ("mode", "argv"),
        [
            ("exec", ["/py", "-m", "supervisor", "exec", "--", "/py", "-m", "worker_app"]),
            (
                "supervise",
                ["/py", "-m", "supervisor", "supervise", "--", "/py", "-m", "worker_app"],
            ),
        ],
    )
    def test_argv_runs_this_interpreter(self, mode: str, argv: list[str]) -> None:
        """`cointoss` and `python` become the running interpreter; the mode swaps the subcommand."""
        template = parse_task_definition(task_definition())
        assert task_argv(template, mode, "/py") == argv  # type: ignore[arg-type]

    def test_rejects_an_entrypoint_that_is_not_exec(self) -> None:
        """`cointoss toss` as entryPoint would never start a worker."""
        template = parse_task_definition(task_definition(entryPoint=["cointoss", "toss"]))
        with pytest.raises(ConfigError, match="runs cointoss toss"):
            task_argv(template, "exec", "/py")


class TestEnvironment:
    def test_local_urls_stand_in_for_the_secrets(self) -> None:
        """Secrets become local URLs; task definition values and demo overrides win over the caller."""
        template = parse_task_definition(task_definition())
        env = task_environment(
            {"PATH": "/bin", "MIGRATION_NEW_WEIGHT": "0.9", "REDIS_URL": "redis://stray"},
            template,
            {"MIGRATION_NEW_REDIS_URL": "redis://n", "MIGRATION_OLD_REDIS_URL": "redis://o"},
            {"MIGRATION_LOG_FORMAT": "json"},
        )
        assert env == {
            "PATH": "/bin",
            "MIGRATION_NEW_WEIGHT": "0.5",
            "MIGRATION_NEW_REDIS_URL": "redis://n",
            "MIGRATION_OLD_REDIS_URL": "redis://o",
            "MIGRATION_LOG_FORMAT": "json",
        }

    def test_unknown_secret_is_an_error(self) -> None:
        """A secret without a local stand-in would start a worker without it."""
        template = parse_task_definition(
            task_definition(secrets=[{"name": "API_KEY", "valueFrom": ARN}])
        )
        with pytest.raises(ConfigError, match="no local stand-in for secret"):
            secret_values(template, {"MIGRATION_NEW_REDIS_URL": "redis://n"})

    @pytest.mark.parametrize(
        ("spec", "queues"),
        [
            ("default", ("default",)),
            ("critical:3,default:1", ("critical", "default")),
            (" a , b ", ("a", "b")),
            ("", ("default",)),
        ],
    )
    def test_backlog_goes_to_the_workers_queues(self, spec: str, queues: tuple[str, ...]) -> None:
        """The backlog is spread over WORKER_QUEUES' names, weights stripped."""
        assert worker_queues(spec) == queues


class TestService:
    @pytest.mark.parametrize(
        ("document", "limits"),
        [
            (
                {
                    "desiredCount": 10,
                    "deploymentConfiguration": {
                        "minimumHealthyPercent": 100,
                        "maximumPercent": 200,
                    },
                },
                DeploymentLimits(10, 100, 200),
            ),
            ({"desiredCount": 3}, DeploymentLimits(3, 100, 200)),
        ],
    )
    def test_reads_limits_with_ecs_defaults(self, document: Any, limits: DeploymentLimits) -> None:
        """Missing percentages take ECS's defaults (100 / 200)."""
        assert parse_service(document) == limits

    def test_rejects_non_numbers(self) -> None:
        """A desiredCount that is not a number is a ConfigError, not a traceback."""
        with pytest.raises(ConfigError, match="must be numbers"):
            parse_service({"desiredCount": "many"})


class TestFiles:
    def test_missing_directory_names_the_file_and_the_fix(self, tmp_path: Path) -> None:
        """Without ecs/ the error names the missing file and how to point at one."""
        with pytest.raises(ConfigError, match=r"task-definition.json: not found.*--ecs-dir"):
            load_ecs(tmp_path)

    def test_bad_json_names_the_line(self, tmp_path: Path) -> None:
        """A broken file is reported with its line number."""
        (tmp_path / "task-definition.json").write_text('{\n"family": }')
        with pytest.raises(ConfigError, match="not valid JSON \\(line 2"):
            load_ecs(tmp_path)

    def test_the_repository_files_are_runnable(self) -> None:
        """The shipped ecs/ files parse, plan a rollout and produce a runnable argv."""
        template, limits = load_ecs(default_ecs_dir())
        assert limits.desired >= 1
        assert set(template.secret_names) <= {"MIGRATION_NEW_REDIS_URL", "MIGRATION_OLD_REDIS_URL"}
        assert task_argv(template, "exec", "/py")[:4] == ["/py", "-m", "supervisor", "exec"]
        document = json.loads((default_ecs_dir() / "task-definition.json").read_text())
        assert document["containerDefinitions"][0]["command"][-1] == template.command[-1]
