"""Structured events: JSON lines for machines, a console view on a terminal, never a password."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
from datetime import datetime

import pytest

from supervisor.logs import configure, get_logger
from tests.conftest import child_env, cointoss_argv

PASSWORD = "logs-Unique-Pw-8Kd"
ENV = {
    "MIGRATION_NEW_REDIS_URL": f"redis://app:{PASSWORD}@127.0.0.1:6399/0",
    "MIGRATION_NEW_WEIGHT": "1",
}


def test_events_are_one_json_object_per_line() -> None:
    """Each event is a JSON line with its name, level and an ISO 8601 UTC timestamp."""
    stream = io.StringIO()
    configure("json", stream)
    log = get_logger()
    log.info("worker_started", pid=42)
    log.warning("old_unreachable", host="h:1")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["event"], first["level"], first["pid"]) == ("worker_started", "info", 42)
    assert (second["event"], second["level"]) == ("old_unreachable", "warning")
    stamp = datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0


def test_every_string_value_is_redacted_however_deep() -> None:
    """Passwords in plain, nested, listed and positional values never reach the stream."""
    stream = io.StringIO()
    configure("json", stream)
    url = f"rediss://app:{PASSWORD}@h:6380/0"
    get_logger(bound=url).info(
        f"connecting to {url}",
        url=url,
        nested={"a": [url, (url,)], "b": f"?password={PASSWORD}"},
        many=[url, 3, None],
    )
    (event,) = (json.loads(line) for line in stream.getvalue().splitlines())
    assert PASSWORD not in stream.getvalue()
    assert event["url"] == "rediss://app:***@h:6380/0"
    assert event["nested"]["a"] == ["rediss://app:***@h:6380/0", ["rediss://app:***@h:6380/0"]]
    assert event["many"] == ["rediss://app:***@h:6380/0", 3, None]


def run_with_stderr_on_a_terminal(env: dict[str, str]) -> str:
    """Runs `cointoss exec -- true` with stderr on a real pseudo-terminal; returns what it shows."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            cointoss_argv("exec", "--", "true"),
            env=child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=slave,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(master)
    return b"".join(chunks).decode()


def test_auto_is_a_console_view_on_a_terminal() -> None:
    """On a terminal, `auto` renders for humans (not JSON), still without the password."""
    shown = run_with_stderr_on_a_terminal(ENV)
    assert "redis_selected" in shown
    assert not shown.lstrip().startswith("{")
    assert PASSWORD not in shown


def test_json_can_be_forced_on_a_terminal() -> None:
    """MIGRATION_LOG_FORMAT=json keeps JSON lines even on a terminal."""
    shown = run_with_stderr_on_a_terminal({**ENV, "MIGRATION_LOG_FORMAT": "json"})
    assert json.loads(shown.strip())["event"] == "redis_selected"


@pytest.mark.parametrize(("fmt", "is_json"), [("auto", True), ("json", True), ("console", False)])
def test_format_on_a_pipe(fmt: str, is_json: bool) -> None:
    """Redirected stderr (ECS awslogs) gets JSON under `auto`; `console` is plain, no colours."""
    proc = subprocess.run(
        cointoss_argv("exec", "--", "true"),
        env=child_env({**ENV, "MIGRATION_LOG_FORMAT": fmt}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert proc.stderr.startswith("{") is is_json
    assert "\x1b[" not in proc.stderr
    assert PASSWORD not in proc.stderr
