"""Standard streams that refuse writes: logs are dropped, results end the command with a known code.

Each case runs the real `cointoss` through a real shell redirection, as a user types it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from supervisor.demo.embedded_redis import RedisServer
from tests.conftest import child_env, cointoss_argv

STDERR_REFUSED = ["2>&-", "2>/dev/full"]


def shell(args: list[str], redirect: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`cointoss ARGS REDIRECT` as a shell runs it (a closed or full stream is set up by sh)."""
    line = f"exec {shlex.join(cointoss_argv(*args))} {redirect}"
    return subprocess.run(
        ["sh", "-c", line],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def urls(old: RedisServer, new: RedisServer) -> dict[str, str]:
    return {"MIGRATION_NEW_REDIS_URL": new.url, "MIGRATION_OLD_REDIS_URL": old.url}


@pytest.mark.parametrize("redirect", STDERR_REFUSED)
@pytest.mark.parametrize("command", ["exec", "supervise"])
def test_a_stderr_that_refuses_writes_never_stops_the_worker(
    command: str, redirect: str, old_redis: RedisServer, new_redis: RedisServer, tmp_path: Path
) -> None:
    """Logs that cannot be written are dropped: the worker still starts, its code is the exit code."""
    marker = tmp_path / "started"
    old_redis.client().lpush("queue:default", "{}")  # OLD not drained: the coin is tossed, logged
    worker = ["sh", "-c", f'touch "{marker}"; exit 3']
    result = shell([command, "--", *worker], redirect, urls(old_redis, new_redis))
    assert marker.exists(), result.stdout
    assert result.returncode == 3


@pytest.mark.parametrize("redirect", STDERR_REFUSED)
def test_a_stderr_that_refuses_writes_keeps_the_exit_code(
    redirect: str, old_redis: RedisServer, new_redis: RedisServer
) -> None:
    """The one error line is lost, not the code: a bad setting is still 78."""
    env = {**urls(old_redis, new_redis), "MIGRATION_NEW_WEIGHT": "2"}
    assert shell(["exec", "--", "true"], redirect, env).returncode == 78


@pytest.fixture
def big_log(tmp_path: Path) -> Path:
    """A fleet log whose report is far longer than a pipe holds (64 KiB)."""
    path = tmp_path / "big.jsonl"
    lines = (
        json.dumps(
            {
                "event": "redis_selected",
                "side": "new" if i % 2 else "old",
                "weight": 0.5,
                "rollout": f"family:{i % 2000}",
                "task_arn": f"arn:task/{i}",
                "timestamp": "2026-01-01T00:00:00Z",
            }
        )
        for i in range(8000)
    )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("args", "redirect", "reason"),
    [
        (["toss"], ">/dev/full", "No space left on device"),
        (["status"], ">/dev/full", "No space left on device"),
        (["status", "--json"], ">/dev/full", "No space left on device"),
        (["report", "{log}"], ">/dev/full", "No space left on device"),
        (["report", "--json", "{log}"], ">/dev/full", "No space left on device"),
        (["toss"], ">&-", "Bad file descriptor"),
    ],
)
def test_a_stdout_that_refuses_writes_is_74_with_one_line(
    args: list[str],
    redirect: str,
    reason: str,
    old_redis: RedisServer,
    new_redis: RedisServer,
    big_log: Path,
) -> None:
    """Results that cannot be written: one line and EX_IOERR, never 'internal error'."""
    argv = [arg.format(log=big_log) for arg in args]
    result = shell(argv, redirect, urls(old_redis, new_redis))
    assert result.returncode == 74, result.stderr
    assert result.stderr.splitlines()[-1] == f"cointoss: cannot write output ({reason})"
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize("args", [["report", "{log}"], ["report", "--json", "{log}"]])
def test_a_reader_that_stops_early_ends_the_command_quietly_with_0(
    args: list[str], big_log: Path
) -> None:
    """`cointoss report big.jsonl | head -1`: the reader has what it wanted; exit 0, no noise."""
    argv = [arg.format(log=big_log) for arg in args]
    proc = subprocess.Popen(  # the pipe by hand, so the exit code is cointoss's own
        cointoss_argv(*argv),
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert stderr == b""
