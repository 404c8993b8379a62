"""Real processes for the worker_app tests: worker_app itself, the real Sidekiq, Ruby's client."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, SIDEKIQ_FIXTURES, child_env

RUBY_DIR = REPO_ROOT / "tests" / "ruby"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Under CI=true the interop tests must run: a missing Sidekiq fails them instead of skipping.
requires_sidekiq = pytest.mark.skipif(
    not IN_CI and shutil.which("sidekiq") is None,
    reason="real Sidekiq (Debian ruby-sidekiq) is not installed",
)

# Fast clocks so tests do not wait for Sidekiq's 5 s beats and 60 s expiry.
FAST = {
    "WORKER_POLL_INTERVAL": "0.3",
    "WORKER_HEARTBEAT_INTERVAL": "0.5",
    "WORKER_RECOVERY_INTERVAL": "0.5",
    "WORKER_SHUTDOWN_TIMEOUT": "5",
}


def sidekiq_fixture(name: str) -> dict[str, Any]:
    """One fixture file of `SIDEKIQ_FIXTURES`, parsed (a key, a hash or a sorted-set member)."""
    return dict(json.loads((SIDEKIQ_FIXTURES / name).read_text()))


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Polls until `predicate()` is truthy and returns it; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def events(self) -> list[dict[str, Any]]:
        """Every JSON log line so far (a non-JSON line fails the test: logs must be JSON)."""
        text = self.log_path.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def raw_log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def named(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.events() if line.get("event") == event]

    def wait_for(self, event: str, timeout: float = 20.0) -> dict[str, Any]:
        return wait_until(lambda: self.named(event), timeout, f"event {event}")[0]

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def worker(url: str, log_dir: Path, **env: str) -> Iterator[WorkerProcess]:
    """`python -m worker_app` against `url`; SIGKILLed at the end if a test left it running."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"worker-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker_app"],
            env=child_env({"REDIS_URL": url, **FAST, **env}),
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
        )
    process = WorkerProcess(proc, log_path)
    try:
        yield process
    finally:
        process.kill()


def started(process: WorkerProcess) -> str:
    """Waits for `worker_app_started` and returns the process identity."""
    return str(process.wait_for("worker_app_started")["identity"])


def enqueue_cli(
    url: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker_app.enqueue", *args],
        env=child_env({"REDIS_PRODUCER_URL": url, **(env or {})}),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )


def ruby_client(url: str, *args: str) -> Any:
    """Runs tests/ruby/client.rb with the real Sidekiq API and returns its JSON output."""
    done = subprocess.run(
        ["ruby", str(RUBY_DIR / "client.rb"), *args],
        env=child_env({"REDIS_URL": url}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def sidekiq(
    url: str, log_dir: Path, concurrency: int = 2, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """The real Sidekiq 6.4.1 running tests/ruby/jobs.rb; stopped with TERM at the end."""
    log_dir.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("sidekiq") or "/usr/bin/sidekiq"
    with (log_dir / "sidekiq.log").open("wb") as log_file:
        proc = subprocess.Popen(
            [
                binary,
                "-r",
                str(RUBY_DIR / "jobs.rb"),
                "-q",
                "default",
                "-c",
                str(concurrency),
                "-t",
                "5",
            ],
            env=child_env({"REDIS_URL": url, **env}),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
