"""Demo tasks are real processes: their events are read live, stops are graceful, kills are not."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

import psutil

from supervisor.demo.fleet import Fleet, Task

# A stand-in task: arms its TERM handler, says which Redis it chose (as cointoss does), logs
# noise, then waits; TERM gets an event and exit code 0 (or is ignored, to test the SIGKILL).
CHILD = r"""
import json, signal, sys, time
def stop(*_):
    print(json.dumps({"event": "worker_exited", "code": 0}), file=sys.stderr, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if sys.argv[2] == "ignore-term" else stop)
print(json.dumps({"event": "redis_selected", "side": sys.argv[1], "reason": "coin"}), file=sys.stderr, flush=True)
print("plain text line", file=sys.stderr, flush=True)
while True:
    time.sleep(0.05)
"""


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, task: Task, event: dict[str, Any]) -> None:
        with self.lock:
            self.events.append((task.task_id, event))

    def names(self, task_id: str) -> list[str]:
        with self.lock:
            return [event["event"] for tid, event in self.events if tid == task_id]


def start(side: str, behaviour: str = "graceful") -> tuple[Fleet, Task, Recorder]:
    recorder = Recorder()
    fleet = Fleet([sys.executable, "-c", CHILD, side, behaviour], recorder)
    task = fleet.start("t1", 1, 0.5, dict(os.environ))
    deadline = time.monotonic() + 20
    while task.first_side is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return fleet, task, recorder


class TestFleet:
    def test_reads_the_choice_from_stderr(self) -> None:
        """redis_selected on stderr sets the task's side; plain lines go to its tail."""
        fleet, task, recorder = start("old")
        try:
            assert (task.first_side, task.first_reason, task.side) == ("old", "coin", "old")
            assert recorder.names("t1") == ["redis_selected"]
            deadline = time.monotonic() + 5
            while not task.tail and time.monotonic() < deadline:
                time.sleep(0.02)
            assert list(task.tail) == ["plain text line"]
            assert fleet.live() == [task]
        finally:
            fleet.stop_all(5)

    def test_stop_is_a_graceful_term(self) -> None:
        """stop() sends SIGTERM first: the task runs its handler and exits 0."""
        fleet, task, recorder = start("new")
        fleet.stop([task], 10)
        assert task.process.returncode == 0
        assert not task.unexpected_exit
        deadline = time.monotonic() + 5
        while "worker_exited" not in recorder.names("t1") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert recorder.names("t1") == ["redis_selected", "worker_exited"]

    def test_stop_escalates_to_sigkill_after_the_timeout(self) -> None:
        """A task that ignores TERM is killed once the stop timeout has passed."""
        fleet, task, _ = start("new", "ignore-term")
        fleet.stop([task], 0.5)
        assert task.process.returncode == -signal.SIGKILL

    def test_kill_runs_no_handler(self) -> None:
        """A chaos kill is SIGKILL: no worker_exited event, and it is not an unexpected exit."""
        fleet, task, recorder = start("old")
        fleet.kill(task)
        assert task.process.returncode == -signal.SIGKILL
        assert task.killed and not task.unexpected_exit
        assert recorder.names("t1") == ["redis_selected"]
        assert fleet.live() == []

    def test_a_task_that_exits_by_itself_is_unexpected(self) -> None:
        """A task that exits without being asked is what the service must replace."""
        fleet = Fleet([sys.executable, "-c", "import sys; sys.exit(3)"], Recorder())
        task = fleet.start("t9", 1, 0.5, dict(os.environ))
        task.process.wait(10)
        assert task.unexpected_exit
        assert task.process.returncode == 3


GRANDPARENT = r"""
import json, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
print(json.dumps({"event": "redis_selected", "side": "new", "reason": "coin", "child": child.pid}), file=sys.stderr, flush=True)
time.sleep(120)
"""


def test_kill_takes_the_whole_task_even_a_new_session() -> None:
    """A chaos kill also kills a worker its entrypoint started in a session of its own."""
    recorder = Recorder()
    fleet = Fleet([sys.executable, "-c", GRANDPARENT], recorder)
    task = fleet.start("t1", 1, 0.5, dict(os.environ))
    deadline = time.monotonic() + 20
    while task.first_side is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child = psutil.Process(next(event["child"] for _, event in recorder.events))
    fleet.kill(task)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
