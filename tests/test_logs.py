"""Structured events: JSON lines for machines, a console view on a terminal, never a password."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import socket
import subprocess
import sys
from datetime import datetime

import pytest

from supervisor.logs import configure, get_logger
from tests.conftest import REPO_ROOT, child_env, cointoss_argv
from worker_app.logline import PIPE_BUF

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


CUT = re.compile(r"\.\.\.\[cut (\d+) chars\]$")


def test_a_long_value_is_cut_so_the_line_fits_one_atomic_pipe_write() -> None:
    """An event longer than PIPE_BUF keeps its name and short fields; its long value is cut, marked."""
    stream = io.BytesIO()
    configure("json", stream)
    get_logger().error("restart_failed", error="e" * 10_000, host="h:1")
    line = stream.getvalue()
    assert line.count(b"\n") == 1 and line.endswith(b"\n") and len(line) <= PIPE_BUF
    event = json.loads(line)
    assert (event["event"], event["host"], event["level"]) == ("restart_failed", "h:1", "error")
    kept = CUT.split(event["error"])
    assert set(kept[0]) == {"e"} and len(kept[0]) + int(kept[1]) == 10_000


def test_escapes_and_many_fields_are_cut_too() -> None:
    """Values that grow when JSON-escaped, or many medium ones, still end in one short line."""
    stream = io.BytesIO()
    configure("json", stream)
    fields = {f"k{i}": "é\n" * 300 for i in range(20)}
    get_logger().warning("old_unreachable", **fields)
    line = stream.getvalue()
    assert len(line) <= PIPE_BUF and json.loads(line)["event"] == "old_unreachable"


def stderr_writes(argv: list[str], env: dict[str, str]) -> list[bytes]:
    """Each write(2) a process makes on its stderr, one message each: a SOCK_SEQPACKET socket
    keeps the boundaries that a pipe or a file would merge."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=theirs.fileno(),
        )
        theirs.close()
        writes = []
        while message := ours.recv(1 << 20):
            writes.append(message)
        proc.wait(60)
    return writes


WORKER_APP_EVENTS = (
    "from worker_app import logs\n"
    "logs.configure('info')\n"
    "log = logs.get_logger()\n"
    "log.info('job_done', jid='a1')\n"
    "log.warning('job_failed', error='x' * 9000)\n"
)


@pytest.mark.parametrize("unbuffered", ["1", ""], ids=["PYTHONUNBUFFERED=1", "buffered"])
def test_worker_app_writes_each_event_in_one_write_of_at_most_pipe_buf(unbuffered: str) -> None:
    """worker_app's events: one write per whole line (before: the newline apart), cut to fit."""
    env = child_env({"PYTHONUNBUFFERED": unbuffered})
    first, second = stderr_writes([sys.executable, "-c", WORKER_APP_EVENTS], env)
    assert first.endswith(b"\n") and json.loads(first)["event"] == "job_done"
    assert second.endswith(b"\n") and len(second) <= PIPE_BUF
    assert CUT.search(json.loads(second)["error"])


def test_cointoss_writes_each_event_in_one_write() -> None:
    """`cointoss exec`'s events, one write per whole line, under PYTHONUNBUFFERED=1 as in the image."""
    env = child_env({**ENV, "MIGRATION_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"})
    writes = stderr_writes(cointoss_argv("exec", "--", "true"), env)
    assert writes and all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)
    assert json.loads(writes[0])["event"] == "redis_selected"


@pytest.mark.parametrize(
    ("argv", "env", "prefix"),
    [
        (cointoss_argv("exec", "--", "no-such-program-xyz"), ENV, b"cointoss: "),
        ([sys.executable, "-m", "worker_app"], {"WORKER_CONCURRENCY": "0"}, b"worker_app: "),
    ],
    ids=["cointoss", "worker_app"],
)
def test_an_error_line_is_one_write(argv: list[str], env: dict[str, str], prefix: bytes) -> None:
    """The one-line errors too leave in one write, newline included (print() writes it apart)."""
    (line,) = stderr_writes(argv, child_env({**env, "PYTHONUNBUFFERED": "1"}))
    assert line.startswith(prefix) and line.endswith(b"\n") and line.count(b"\n") == 1
