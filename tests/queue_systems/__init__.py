"""Real RQ and Celery for the layout tests: their own venv, job modules and producers.

The venv (REPO/.venv-queues, or COINTOSS_QUEUE_VENV) is created on first use from
requirements.txt; .ci/run creates it up front. Workers and producers run as subprocesses with
that venv's interpreter and this directory on PYTHONPATH, so nothing here is imported by the
suite itself.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import redis

from supervisor import constants as k
from tests.conftest import REPO_ROOT, child_env, cointoss_argv

HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("COINTOSS_QUEUE_VENV", REPO_ROOT / ".venv-queues"))


def queue_venv() -> Path:
    """The venv's bin directory, created (once) when rq or celery is missing from it."""
    bin_dir = VENV / "bin"
    if not (bin_dir / "rq").exists() or not (bin_dir / "celery").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [
                str(bin_dir / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "-r",
                str(HERE / "requirements.txt"),
            ],
            check=True,
        )
    return bin_dir


def queue_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for a worker or producer: this directory importable, no MIGRATION_*."""
    env = child_env(extra)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env["PYTHONPATH"]])
    return env


def produce(script: str, *args: object, env: Mapping[str, str] | None = None) -> str:
    """Runs a producer script of this directory with the queue venv's Python; its stdout."""
    result = subprocess.run(
        [str(queue_venv() / "python"), str(HERE / script), *map(str, args)],
        env=queue_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def wait_for(predicate: object, timeout: float = 60.0, what: str = "") -> None:
    """Polls `predicate()` until truthy; fails with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def ledger(*clients: object) -> dict[bytes, int]:
    """Runs per job id, summed over both sides' `ledger` hashes."""
    total: dict[bytes, int] = {}
    for client in clients:
        for jid, runs in client.hgetall("ledger").items():  # type: ignore[attr-defined]
            total[jid] = total.get(jid, 0) + int(runs)
    return total


def expected(*groups: str) -> set[bytes]:
    """The job ids `produce` printed, as the ledger's keys."""
    return {jid.encode() for group in groups for jid in group.split()}


def term(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Warm shutdown (TERM) for RQ and Celery alike: the running job finishes, held messages go
    back to the queue; a worker that outlives `timeout` is killed so the test never hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Supervise checks OLD often and restarts at once, so a fleet test converges in seconds.
FAST_DRAIN = {
    "MIGRATION_DRAIN_CHECK_INTERVAL": "0.3",
    "MIGRATION_DRAIN_CONFIRMATIONS": "2",
    "MIGRATION_DRAIN_JITTER": "0",
    "MIGRATION_MAX_RESTARTS": "0",
}


def fleet_env(
    layout: str, old_url: str, new_url: str, seed: str, exports: Mapping[str, str]
) -> dict[str, str]:
    """A fleet member's environment: an even coin, `seed` picks its side, `exports` name the
    variables the worker reads its Redis URL from."""
    return queue_env(
        {
            "MIGRATION_QUEUE_LAYOUT": layout,
            "MIGRATION_OLD_REDIS_URL": old_url,
            "MIGRATION_NEW_REDIS_URL": new_url,
            "MIGRATION_NEW_WEIGHT": "0.5",
            "MIGRATION_SEED": seed,
            **exports,
            "MIGRATION_LOG_FORMAT": "json",
        }
    )


def exec_worker(worker_argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`cointoss exec -- <worker>`: cointoss tosses, then becomes the worker (same pid)."""
    return subprocess.Popen(
        cointoss_argv("exec", "--", *worker_argv),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_migrate_mid_run(
    argv: Sequence[str],
    env: Mapping[str, str],
    old: redis.Redis,
    left: Callable[[], int],
    seed: int,
    kills: int,
) -> int:
    """SIGKILLs `kills` migrate runs, each after a random 2-30 % of what is `left` has moved;
    returns how many kills left a journal behind (a kill between a claim and its ack)."""
    rng = random.Random(seed)
    torn = 0
    for _ in range(kills):
        before = left()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = before - rng.uniform(0.02, 0.3) * before
        deadline = time.monotonic() + 60
        while left() > target and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        torn += bool(list(old.scan_iter(match=k.MIGRATE_JOURNAL_PREFIX + "*")))
    return torn


def argv_text(argv: Sequence[str]) -> str:
    return " ".join(argv)
