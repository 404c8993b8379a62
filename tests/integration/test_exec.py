"""`cointoss exec` as a user runs it: a real process that becomes the worker (same PID)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor.demo.embedded_redis import RedisServer
from supervisor.toss.decide import sticky_draw
from tests.conftest import child_env, cointoss_argv, run_cointoss
from tests.test_identity import TASK, serve_json

# The worker: reports the PID it runs as and the environment block it was exec'd with
# (/proc/self/environ, which its own interpreter's locale coercion cannot touch), plus its
# ignored and blocked signal masks, then exits with the code it is given.
WORKER = textwrap.dedent(
    """
    import json, os, sys
    raw = open("/proc/self/environ", "rb").read().split(b"\\0")
    env = dict(os.fsdecode(item).split("=", 1) for item in raw if item)
    print(json.dumps({"pid": os.getpid(), "env": env, "argv": sys.argv[1:]}), flush=True)
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    """
)


@pytest.fixture
def worker(tmp_path: Path) -> list[str]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    return [sys.executable, str(script)]


def run_exec(
    worker: list[str], env: dict[str, str], *args: str
) -> tuple[subprocess.Popen[str], dict[str, Any], str]:
    """Spawn `cointoss exec -- WORKER ARGS` with exactly `env`; return the process and the report."""
    proc = subprocess.Popen(
        cointoss_argv("exec", "--", *worker, *args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    out, err = proc.communicate(timeout=60)
    return proc, json.loads(out), err


def base_env(old: RedisServer, new: RedisServer, **extra: str) -> dict[str, str]:
    return child_env(
        {
            "MIGRATION_NEW_REDIS_URL": new.url,
            "MIGRATION_OLD_REDIS_URL": old.url,
            "MIGRATION_NEW_WEIGHT": "1",
            **extra,
        }
    )


def expected_env(source: dict[str, str], chosen: str, new: str, side: str) -> dict[str, str]:
    env = {
        n: v
        for n, v in source.items()
        if n not in ("MIGRATION_NEW_REDIS_URL", "MIGRATION_OLD_REDIS_URL")
    }
    return {**env, "REDIS_URL": chosen, "REDIS_PRODUCER_URL": new, "MIGRATION_CHOICE": side}


@pytest.mark.parametrize(("weight", "side"), [("1", "new"), ("0", "old")])
def test_exec_replaces_the_process_with_exactly_the_specified_environment(
    old_redis: RedisServer, new_redis: RedisServer, worker: list[str], weight: str, side: str
) -> None:
    """The worker runs under cointoss's PID, with the caller's environment plus the chosen URL,
    NEW's URL and MIGRATION_CHOICE, and without either source URL variable."""
    env = base_env(old_redis, new_redis, MIGRATION_NEW_WEIGHT=weight)
    proc, report, _ = run_exec(worker, env, "0", "--flag", "two words")
    assert report["pid"] == proc.pid
    assert report["argv"] == ["0", "--flag", "two words"]
    chosen = new_redis.url if side == "new" else old_redis.url
    assert report["env"] == expected_env(env, chosen, new_redis.url, side)


def test_exec_adds_nothing_when_the_locale_is_unset(
    old_redis: RedisServer, new_redis: RedisServer, worker: list[str]
) -> None:
    """Python coerces a C locale by setting LC_CTYPE in its own environment; that must not leak
    into the worker (a Ruby worker would change its default encoding)."""
    env = {
        n: v
        for n, v in base_env(old_redis, new_redis).items()
        if not n.startswith(("LC_", "LANG", "PYTHONCOERCECLOCALE", "PYTHONUTF8"))
    }
    _, report, _ = run_exec(worker, env)
    assert report["env"] == expected_env(env, new_redis.url, new_redis.url, "new")


def signal_masks(status: str) -> dict[str, str]:
    fields = dict(line.split(":\t", 1) for line in status.splitlines())
    return {name: fields[name] for name in ("SigIgn", "SigBlk")}


def test_worker_gets_default_signal_dispositions(
    old_redis: RedisServer, new_redis: RedisServer
) -> None:
    """Python ignores SIGPIPE and SIGXFSZ for itself; an exec'd (non-Python) worker must not
    inherit that, so its ignored and blocked masks equal those of the same program run directly."""
    status = ["cat", "/proc/self/status"]
    via_cointoss = run_cointoss(["exec", "--", *status], base_env(old_redis, new_redis))
    direct = subprocess.run(status, capture_output=True, text=True, check=True)
    assert signal_masks(via_cointoss.stdout) == signal_masks(direct.stdout)


def test_worker_exit_code_is_the_process_exit_code(
    old_redis: RedisServer, new_redis: RedisServer, worker: list[str]
) -> None:
    """After exec nothing of cointoss is left: the worker's exit code is the container's."""
    proc, _, _ = run_exec(worker, base_env(old_redis, new_redis), "3")
    assert proc.returncode == 3


def test_redis_selected_is_logged_once_before_the_worker_starts(
    old_redis: RedisServer, new_redis: RedisServer, worker: list[str]
) -> None:
    """One JSON line on stderr with every `redis_selected` field, the password masked, argv[0] only."""
    new = f"redis://default:exec-Unique-Pw@127.0.0.1:{new_redis.port}/0"
    env = base_env(old_redis, new_redis, MIGRATION_NEW_REDIS_URL=new)
    proc, report, err = run_exec(worker, env, "0", "--secret-arg")
    (line,) = err.splitlines()
    event = json.loads(line)
    assert event["event"] == "redis_selected"
    assert event["pid"] == proc.pid == report["pid"]
    assert (event["side"], event["reason"], event["weight"]) == ("new", "weight_is_1", 1.0)
    assert event["url"] == f"redis://default:***@127.0.0.1:{new_redis.port}/0"
    assert event["host"] == f"127.0.0.1:{new_redis.port}"
    assert event["command"] == sys.executable
    assert event["timestamp"].endswith("Z")
    for field in ("strategy", "draw", "task_arn", "family", "revision", "az", "hostname"):
        assert field in event
    assert "exec-Unique-Pw" not in err


def test_ten_concurrent_starts_split_exactly_with_even(
    old_redis: RedisServer, new_redis: RedisServer
) -> None:
    """Ten `cointoss exec` started at once at w=0.3 with `even`: exactly three consume NEW."""
    old_redis.client().lpush("queue:default", "{}")  # a backlog, so OLD is not drained
    env = base_env(
        old_redis,
        new_redis,
        MIGRATION_NEW_WEIGHT="30%",
        MIGRATION_STRATEGY="even",
        MIGRATION_ROLLOUT_ID="c10",
    )
    argv = cointoss_argv("exec", "--", "printenv", "MIGRATION_CHOICE")
    procs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(10)
    ]
    choices = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert sorted(choices) == ["new"] * 3 + ["old"] * 7
    assert int(new_redis.client().get("cointoss:rollout:c10:seq")) == 10


def test_metadata_identity_reaches_the_event(
    old_redis: RedisServer, new_redis: RedisServer, metadata_server: Callable[[Any], str]
) -> None:
    """With ECS_CONTAINER_METADATA_URI_V4 set, redis_selected names the task; sticky keys on it."""
    env = base_env(
        old_redis,
        new_redis,
        MIGRATION_STRATEGY="sticky",
        MIGRATION_NEW_WEIGHT="0.5",
        MIGRATION_QUEUE_LAYOUT="none",
        ECS_CONTAINER_METADATA_URI_V4=metadata_server(serve_json(TASK)),
    )
    result = run_cointoss(["exec", "--", "true"], env)
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stderr.splitlines()[-1])
    assert (event["task_arn"], event["family"], event["revision"], event["az"]) == (
        TASK["TaskARN"],
        "sidekiq-workers",
        "17",
        "eu-west-1b",
    )
    assert event["rollout"] == "sidekiq-workers:17"
    assert event["draw"] == sticky_draw(TASK["TaskARN"], "cointoss")


# Packages that must never load on the exec path; a real import always loads submodules
# (redis.client, rich.console, ...), while a blocked optional import is only a failed attempt.
HEAVY = ("redis", "hiredis", "rich", "matplotlib", "psutil", "pygments")


def test_checks_off_never_import_redis(old_redis: RedisServer, new_redis: RedisServer) -> None:
    """With the checks off (weight 1) the exec path never loads redis-py, rich, matplotlib or
    psutil (-X importtime lists every module the interpreter loads before the exec)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *cointoss_argv("exec", "--", "true")[1:]],
        env=base_env(old_redis, new_redis),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "supervisor.toss.selection" in modules  # the exec path was really taken
    assert not {m for m in modules if "." in m and m.split(".")[0] in HEAVY}


def test_redis_is_not_in_sys_modules_after_a_toss_with_checks_off(
    old_redis: RedisServer, new_redis: RedisServer
) -> None:
    """In one interpreter, after `cointoss toss` with checks off, sys.modules has no redis."""
    probe = (
        "import sys\n"
        "from supervisor.cli import main\n"
        "assert main(['toss']) == 0\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    env = base_env(old_redis, new_redis, MIGRATION_NEW_WEIGHT="0.4", MIGRATION_QUEUE_LAYOUT="none")
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"
