"""Real RQ and Celery for the layout tests: their own venv, job modules and producers.

The venv (REPO/.venv-queues, or COINTOSS_QUEUE_VENV) is created on first use from
requirements.txt; .ci/run creates it up front. Workers and producers run as subprocesses with
that venv's interpreter and this directory on PYTHONPATH, so nothing here is imported by the
suite itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.conftest import REPO_ROOT, child_env

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


def argv_text(argv: Sequence[str]) -> str:
    return " ".join(argv)
