"""A harness for `cointoss supervise` tests: a real supervisor process, its events, its children."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import child_env, cointoss_argv

SUPPORT = Path(__file__).resolve().parent
RECORDER = str(SUPPORT / "recorder.py")
ORPHANER = str(SUPPORT / "orphaner.py")
LIVENESS_S = 30.0  # generous: the machine is shared; no test asserts speed

Event = dict[str, Any]


def supervise_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Settings for a supervisor that needs no Redis (weight 1: NEW is never contacted)."""
    env = {
        "MIGRATION_NEW_REDIS_URL": "redis://127.0.0.1:9/0",
        "MIGRATION_NEW_WEIGHT": "1",
        "MIGRATION_LOG_FORMAT": "json",
        "MIGRATION_MAX_RESTARTS": "0",
    }
    env.update(extra or {})
    return child_env(env)


PID_NAMESPACE_COMMANDS = (
    ["unshare", "--pid", "--fork", "--mount-proc"],  # as root
    ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"],  # unprivileged
)


def pid_namespace_prefix() -> list[str] | None:
    """The first `unshare` form this machine allows, or None."""
    for prefix in PID_NAMESPACE_COMMANDS:
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    return None


PID1_PREFIX = pid_namespace_prefix() or []
needs_pid_namespace = pytest.mark.skipif(
    not PID1_PREFIX,
    reason="this machine refuses `unshare --pid` (as root and via a user namespace)",
)


def host_pid_of_supervisor(unshare_pid: int) -> int:
    """Under `unshare --fork` the supervisor is unshare's only child (PID 1 inside)."""
    return wait_until(
        lambda: [c.pid for c in psutil.Process(unshare_pid).children()], what="unshare's child"
    )[0]


def wait_until(
    predicate: Callable[[], Any], timeout: float = LIVENESS_S, what: str = "", every: float = 0.02
) -> Any:
    """Polls until `predicate()` is truthy; fails the test with `what` after `timeout` seconds.

    `every` spaces out predicates that cost a process each (`podman logs`) on a shared machine.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


class Supervised:
    """`cointoss supervise -- CMD` as a real process; stderr (the events) goes to a file."""

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        tmp_path: Path,
        *,
        prefix: Sequence[str] = (),
    ) -> None:
        self.log_path = tmp_path / f"supervise-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        argv = [*prefix, *cointoss_argv("supervise", "--", *command)]
        self.process = subprocess.Popen(
            argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def events(self, name: str | None = None) -> list[Event]:
        """Every JSON event logged so far (other output lines are skipped), optionally by name."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if name is None or event.get("event") == name:
                    found.append(event)
        return found

    def wait_event(self, name: str, count: int = 1, timeout: float = LIVENESS_S) -> list[Event]:
        """Waits until `name` has been logged `count` times; returns those events."""
        return wait_until(
            lambda: (events := self.events(name)) and len(events) >= count and events,
            timeout,
            f"{count} x {name}; log so far:\n{self.output()}",
        )

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = LIVENESS_S) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"supervisor still running; log:\n{self.output()}") from None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        """Stops the supervisor the way ECS would (TERM, then KILL), so its worker goes too."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait()
        self._log.close()


def recorder(record: Path, *options: str) -> list[str]:
    """The command line of the signal-recording stand-in worker."""
    return [sys.executable, RECORDER, str(record), *options]


def recorded(record: Path) -> list[str]:
    """Signal names the recorder has written so far."""
    return record.read_text().split() if record.exists() else []


def starts(path: Path) -> list[Event]:
    """One JSON document per start of the recorder."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
