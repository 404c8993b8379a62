"""The ECS files: valid for the AWS API and CloudFormation, plus the rules those tools miss.

Each extra rule is a small function returning its problems, tested on the real files and on a
deliberately broken copy, so a rule that could never fire would be noticed.
"""

from __future__ import annotations

import copy
import re
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from hypothesis import given
from hypothesis import strategies as st

from supervisor.settings import URL_FIELDS, Settings, env_name, known_variables, parse_weight
from tests.tooling import (
    CLOUDFORMATION,
    DOCKERFILE,
    ECS_DIR,
    SERVICE,
    TASK_DEFINITION,
    dev_tool,
    image_start_command,
    load_cloudformation,
    load_json,
)

FARGATE_MAX_STOP_TIMEOUT_S = 120
MIGRATION_NAME = re.compile(r"\bMIGRATION_[A-Z0-9_]+\b")
WORKER_SHUTDOWN_VARIABLE = "WORKER_SHUTDOWN_TIMEOUT"
# NewWeight's AllowedPattern in cloudformation.yaml (a test checks they are the same).
WEIGHT_PATTERN = r"^(0(\.[0-9]+)?|1(\.0+)?|(100(\.0+)?|[1-9]?[0-9](\.[0-9]+)?)%)$"


def _api_errors(document: Mapping[str, Any], operation: str) -> str:
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(dict(document), shape)
    return report.generate_report() if report.has_errors() else ""


def _env(container: Mapping[str, Any]) -> dict[str, str]:
    return {item["name"]: str(item["value"]) for item in container.get("environment", [])}


def stop_timeout_problems(task: Mapping[str, Any]) -> list[str]:
    """Fargate caps stopTimeout at 120 s; it must also outlast cointoss's and the worker's own."""
    problems = []
    fargate = "FARGATE" in task.get("requiresCompatibilities", [])
    own = float(Settings.model_fields["stop_timeout"].default)
    for container in task["containerDefinitions"]:
        timeout = container.get("stopTimeout")
        env = _env(container)
        budgets = [float(env.get(env_name("stop_timeout"), own))]
        if WORKER_SHUTDOWN_VARIABLE in env:
            budgets.append(float(env[WORKER_SHUTDOWN_VARIABLE]))
        if timeout is None:
            problems.append(f"{container['name']}: no stopTimeout (ECS would use 30 s)")
        elif fargate and timeout > FARGATE_MAX_STOP_TIMEOUT_S:
            problems.append(f"{container['name']}: stopTimeout {timeout} is above Fargate's 120")
        elif timeout <= max(budgets):
            problems.append(f"{container['name']}: stopTimeout {timeout} <= {max(budgets)}")
    return problems


def awslogs_problems(task: Mapping[str, Any]) -> list[str]:
    """Fargate needs awslogs-stream-prefix (cfn-lint and botocore only check group and region)."""
    problems = []
    for container in task["containerDefinitions"]:
        config = container.get("logConfiguration") or {}
        options = config.get("options") or {}
        if config.get("logDriver") != "awslogs":
            problems.append(f"{container['name']}: log driver is not awslogs")
            continue
        for option in ("awslogs-group", "awslogs-region", "awslogs-stream-prefix"):
            if not options.get(option):
                problems.append(f"{container['name']}: {option} missing")
    return problems


def unknown_migration_names(texts: Iterable[str]) -> set[str]:
    """MIGRATION_* names that no setting reads: a typo would silently fall back to a default."""
    return {name for text in texts for name in MIGRATION_NAME.findall(text)} - known_variables()


def entrypoint_problems(container: Mapping[str, Any]) -> list[str]:
    """The task must start the image the way the Dockerfile does (or the coin is never tossed)."""
    entrypoint, command = image_start_command()
    problems = []
    if container.get("entryPoint") != entrypoint:
        problems.append(f"entryPoint {container.get('entryPoint')} != Dockerfile {entrypoint}")
    if container.get("command") != command:
        problems.append(f"command {container.get('command')} != Dockerfile {command}")
    return problems


def secret_problems(container: Mapping[str, Any]) -> list[str]:
    """Redis URLs come from Secrets Manager only; a URL in `environment` would show its password."""
    problems = [
        f"{name} holds a URL in plain environment"
        for name, value in _env(container).items()
        if "://" in value
    ]
    secrets = {item["name"] for item in container.get("secrets", [])}
    for field in URL_FIELDS:
        if env_name(field) not in secrets:
            problems.append(f"{env_name(field)} is not in secrets")
    return problems


def cloudformation_task(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template's task definition in the API's spelling (camelCase) for the shared checks."""
    props = template["Resources"]["TaskDefinition"]["Properties"]

    def container(c: Mapping[str, Any]) -> dict[str, Any]:
        log = c["LogConfiguration"]
        return {
            "name": c["Name"],
            "entryPoint": c["EntryPoint"],
            "command": c["Command"],
            "environment": [{"name": e["Name"], "value": e["Value"]} for e in c["Environment"]],
            "secrets": [{"name": s["Name"], "valueFrom": s["ValueFrom"]} for s in c["Secrets"]],
            "stopTimeout": c["StopTimeout"],
            "linuxParameters": {"initProcessEnabled": c["LinuxParameters"]["InitProcessEnabled"]},
            "logConfiguration": {"logDriver": log["LogDriver"], "options": dict(log["Options"])},
        }

    return {
        "requiresCompatibilities": props["RequiresCompatibilities"],
        "cpu": props["Cpu"],
        "memory": props["Memory"],
        "containerDefinitions": [container(c) for c in props["ContainerDefinitions"]],
    }


@pytest.fixture(name="task")
def _task() -> dict[str, Any]:
    return load_json(TASK_DEFINITION)


@pytest.fixture(name="worker")
def _worker(task: dict[str, Any]) -> dict[str, Any]:
    containers = task["containerDefinitions"]
    assert len(containers) == 1
    return dict(containers[0])


class TestAgainstAwsModels:
    def test_task_definition_is_a_valid_register_task_definition_input(
        self, task: dict[str, Any]
    ) -> None:
        """botocore's ECS model accepts ecs/task-definition.json as RegisterTaskDefinition input."""
        assert _api_errors(task, "RegisterTaskDefinition") == ""

    def test_service_is_a_valid_create_service_input(self) -> None:
        """botocore's ECS model accepts ecs/service.json as CreateService input."""
        assert _api_errors(load_json(SERVICE), "CreateService") == ""

    def test_model_rejects_a_misspelt_field(self, task: dict[str, Any]) -> None:
        """The offline validator is live: an unknown key and a string stopTimeout are errors."""
        broken = copy.deepcopy(task)
        worker = broken["containerDefinitions"][0]
        worker["linuxParameters"] = {"initProcessEnable": True}
        worker["stopTimeout"] = "60"
        report = _api_errors(broken, "RegisterTaskDefinition")
        assert "initProcessEnable" in report and "stopTimeout" in report

    def test_cloudformation_template_passes_cfn_lint(self) -> None:
        """cfn-lint finds no error, warning or informational match in the template."""
        result = subprocess.run(
            [dev_tool("cfn-lint"), str(CLOUDFORMATION)], capture_output=True, text=True, timeout=240
        )
        assert result.returncode == 0, result.stdout + result.stderr


class TestTaskDefinition:
    def test_is_fargate_with_the_worker_essential(
        self, task: dict[str, Any], worker: dict[str, Any]
    ) -> None:
        """One essential worker container on Fargate in awsvpc mode."""
        assert task["requiresCompatibilities"] == ["FARGATE"]
        assert task["networkMode"] == "awsvpc"
        assert worker["essential"] is True

    def test_starts_the_image_like_the_dockerfile(self, worker: dict[str, Any]) -> None:
        """entryPoint and command are the Dockerfile's ENTRYPOINT and CMD."""
        assert entrypoint_problems(worker) == []

    def test_runs_an_init_because_exec_mode_makes_the_worker_pid_1(
        self, worker: dict[str, Any]
    ) -> None:
        """After `cointoss exec` the worker is PID 1; ECS's init (tini) reaps its zombies."""
        assert worker["entryPoint"][:2] == ["cointoss", "exec"]
        assert worker["linuxParameters"]["initProcessEnabled"] is True

    def test_stop_timeout_outlasts_graceful_stops_within_fargate_limit(
        self, task: dict[str, Any]
    ) -> None:
        """stopTimeout is above cointoss's and the worker's own stop budget and at most 120 s."""
        assert stop_timeout_problems(task) == []

    def test_logs_go_to_awslogs_with_a_stream_prefix(self, task: dict[str, Any]) -> None:
        """awslogs with group, region and the stream prefix Fargate requires."""
        assert awslogs_problems(task) == []

    def test_urls_come_from_secrets_and_the_coin_from_environment(
        self, worker: dict[str, Any]
    ) -> None:
        """Both URLs are secrets; weight and strategy are plain environment."""
        assert secret_problems(worker) == []
        assert {env_name("new_weight"), env_name("strategy")} <= set(_env(worker))

    def test_environment_is_accepted_by_the_settings(
        self, worker: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The task's MIGRATION_* values load as valid settings once the secrets are filled in."""
        for name, value in _env(worker).items():
            monkeypatch.setenv(name, value)
        for secret in worker["secrets"]:
            monkeypatch.setenv(secret["name"], "redis://10.0.0.1:6379/0")
        from supervisor.settings import load_settings

        settings = load_settings()
        assert settings.new_weight == parse_weight(_env(worker)[env_name("new_weight")])


class TestService:
    def test_rolls_with_a_circuit_breaker_that_rolls_back(self) -> None:
        """A rolling (ECS) deployment with percentages, desired count and breaker+rollback."""
        service = load_json(SERVICE)
        deployment = service["deploymentConfiguration"]
        assert service["deploymentController"]["type"] == "ECS"
        assert service["desiredCount"] > 0
        assert 0 <= deployment["minimumHealthyPercent"] <= 100 < deployment["maximumPercent"]
        assert deployment["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}

    def test_runs_the_task_definition_family(self, task: dict[str, Any]) -> None:
        """The service points at the task definition's family (its latest ACTIVE revision)."""
        assert load_json(SERVICE)["taskDefinition"] == task["family"]


class TestCloudFormation:
    def test_has_the_operator_parameters(self) -> None:
        """NewWeight, Strategy, Image and both secret ARNs are parameters."""
        parameters = load_cloudformation()["Parameters"]
        assert {
            "NewWeight",
            "Strategy",
            "Image",
            "NewRedisUrlSecretArn",
            "OldRedisUrlSecretArn",
        } <= set(parameters)
        assert set(parameters["Strategy"]["AllowedValues"]) == set(
            Settings.model_fields["strategy"].annotation.__args__  # type: ignore[union-attr]
        )

    def test_defines_log_group_task_definition_and_service(self) -> None:
        """The three resources the issue asks for, with the right types."""
        types = {name: r["Type"] for name, r in load_cloudformation()["Resources"].items()}
        assert types["LogGroup"] == "AWS::Logs::LogGroup"
        assert types["TaskDefinition"] == "AWS::ECS::TaskDefinition"
        assert types["Service"] == "AWS::ECS::Service"

    def test_task_definition_passes_the_same_rules(self) -> None:
        """Entry point, stop timeout, awslogs prefix and secrets rules hold in the template too."""
        task = cloudformation_task(load_cloudformation())
        worker = task["containerDefinitions"][0]
        assert entrypoint_problems(worker) == []
        assert stop_timeout_problems(task) == []
        assert awslogs_problems(task) == []
        assert secret_problems(worker) == []
        assert worker["linuxParameters"]["initProcessEnabled"] is True

    def test_mirrors_the_json_files(self, task: dict[str, Any], worker: dict[str, Any]) -> None:
        """Template and JSON files agree on what the fleet runs, so neither drifts alone."""
        template = load_cloudformation()
        mirrored = cloudformation_task(template)
        twin = mirrored["containerDefinitions"][0]
        for key in ("name", "entryPoint", "command", "stopTimeout", "linuxParameters"):
            assert twin[key] == worker[key], key
        assert set(_env(twin)) == set(_env(worker))
        assert [s["name"] for s in twin["secrets"]] == [s["name"] for s in worker["secrets"]]
        assert (mirrored["cpu"], mirrored["memory"]) == (task["cpu"], task["memory"])
        prefix = "awslogs-stream-prefix"
        assert (
            twin["logConfiguration"]["options"][prefix]
            == worker["logConfiguration"]["options"][prefix]
        )
        service = template["Resources"]["Service"]["Properties"]["DeploymentConfiguration"]
        json_service = load_json(SERVICE)["deploymentConfiguration"]
        assert service["MinimumHealthyPercent"] == json_service["minimumHealthyPercent"]
        assert service["MaximumPercent"] == json_service["maximumPercent"]

    @given(st.from_regex(WEIGHT_PATTERN, fullmatch=True))
    def test_every_new_weight_the_template_allows_is_a_valid_weight(self, weight: str) -> None:
        """Whatever NewWeight's AllowedPattern lets through, MIGRATION_NEW_WEIGHT accepts."""
        assert 0 <= parse_weight(weight) <= 1

    def test_new_weight_pattern_is_the_one_property_tested(self) -> None:
        """The pattern the property test draws from is the template's own."""
        pattern = load_cloudformation()["Parameters"]["NewWeight"]["AllowedPattern"]
        assert pattern == WEIGHT_PATTERN
        assert re.fullmatch(pattern, "150%") is None and re.fullmatch(pattern, "1.5") is None


class TestNames:
    def test_every_migration_name_in_ecs_is_a_real_setting(self) -> None:
        """No MIGRATION_* name in ecs/ or the Dockerfile is a typo the settings would ignore."""
        files = [*sorted(ECS_DIR.iterdir()), DOCKERFILE]
        texts = [path.read_text() for path in files if path.is_file()]
        assert any("MIGRATION_NEW_WEIGHT" in text for text in texts)
        assert unknown_migration_names(texts) == set()


class TestRulesCatchBrokenCopies:
    def test_flags_stop_timeout_above_fargate_limit(self, task: dict[str, Any]) -> None:
        """stopTimeout 600 passes botocore but not this rule."""
        broken = copy.deepcopy(task)
        broken["containerDefinitions"][0]["stopTimeout"] = 600
        assert _api_errors(broken, "RegisterTaskDefinition") == ""
        assert stop_timeout_problems(broken)

    def test_flags_stop_timeout_shorter_than_the_graceful_stop(self, task: dict[str, Any]) -> None:
        """A stopTimeout below the worker's shutdown budget would SIGKILL jobs mid-flight."""
        broken = copy.deepcopy(task)
        broken["containerDefinitions"][0]["stopTimeout"] = 20
        assert stop_timeout_problems(broken)

    def test_flags_missing_stream_prefix(self, task: dict[str, Any]) -> None:
        """Dropping awslogs-stream-prefix is caught."""
        broken = copy.deepcopy(task)
        del broken["containerDefinitions"][0]["logConfiguration"]["options"][
            "awslogs-stream-prefix"
        ]
        assert awslogs_problems(broken) == ["worker: awslogs-stream-prefix missing"]

    def test_flags_a_misspelt_setting(self) -> None:
        """MIGRATION_NEW_WIEGHT is not a setting; MIGRATION_OLD_REDIS_URL_FILE is."""
        text = "MIGRATION_NEW_WIEGHT=0.5 MIGRATION_OLD_REDIS_URL_FILE=/run/secret"
        assert unknown_migration_names([text]) == {"MIGRATION_NEW_WIEGHT"}

    def test_flags_an_entry_point_that_skips_cointoss(self, worker: dict[str, Any]) -> None:
        """A task that starts the worker directly never tosses the coin."""
        broken = dict(worker, entryPoint=["python"], command=["-m", "worker_app"])
        assert len(entrypoint_problems(broken)) == 2

    def test_flags_a_url_in_plain_environment(self, worker: dict[str, Any]) -> None:
        """A Redis URL moved from secrets to environment is caught."""
        broken = copy.deepcopy(worker)
        broken["secrets"] = broken["secrets"][:1]
        broken["environment"].append(
            {"name": "MIGRATION_OLD_REDIS_URL", "value": "redis://:pw@h:6379"}
        )
        assert len(secret_problems(broken)) == 2
