"""Each event reaches stderr in one write, newline included.

`cointoss supervise` and its worker share one stderr (one container log, one awslogs stream). An
event written as two writes (the line, then its newline, as print() does) lets the other process's
line land in between, splicing two JSON objects into one line that no log reader can parse. Seen
in tests/test_container.py: `{...signal_forwarded...}{...signal_received...}` on one line.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator

import pytest
import structlog

import worker_app.logs
from supervisor.logs import configure, get_logger


class Writes(io.StringIO):
    """A text stream that keeps each write call apart."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


@pytest.fixture
def writes() -> Iterator[Writes]:
    yield Writes()
    structlog.reset_defaults()  # no later test may log into this stream


def _one_line_each(calls: list[str], events: list[str]) -> bool:
    """One call per event, each a whole JSON line."""
    whole_lines = all(call.endswith("\n") and call.count("\n") == 1 for call in calls)
    return whole_lines and [json.loads(call)["event"] for call in calls] == events


def test_cointoss_writes_each_event_in_one_call(writes: Writes) -> None:
    configure("json", writes)
    log = get_logger()
    log.info("signal_forwarded", signal="SIGTERM")
    log.info("worker_exited", exit_code=0)
    assert _one_line_each(writes.calls, ["signal_forwarded", "worker_exited"]), writes.calls


def test_worker_app_writes_each_event_in_one_call(
    writes: Writes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stderr", writes)  # in the test: pytest resets stderr per phase
    worker_app.logs.configure()
    log = worker_app.logs.get_logger()
    log.info("signal_received", signal="SIGTERM")
    log.info("worker_app_stopped")
    assert _one_line_each(writes.calls, ["signal_received", "worker_app_stopped"]), writes.calls
