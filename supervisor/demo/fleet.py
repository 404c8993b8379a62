"""The demo's tasks: real processes, stopped the way ECS stops them and killed the way hosts die.

Each task's stderr is read on its own thread; JSON event lines are handed to the caller with the
task attached, everything else is kept as a short tail for error messages.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TAIL_LINES = 20
EventSink = Callable[["Task", dict[str, Any]], None]


@dataclass
class Task:
    """One running (or finished) task and what its logs said about its choice."""

    task_id: str
    revision: int
    weight: float
    process: subprocess.Popen[bytes]
    started_at: float
    side: str | None = None  # the side it consumes from now (supervise mode can switch)
    first_side: str | None = None  # the start-up choice: what a deployment's split counts
    first_reason: str | None = None
    selections: int = 0
    stopping: bool = False
    killed: bool = False
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def unexpected_exit(self) -> bool:
        """Exited without the demo asking: the service must replace it."""
        return not self.alive and not self.stopping and not self.killed


class Fleet:
    """Starts, stops and kills task processes; keeps every task it ever started."""

    def __init__(self, argv: Sequence[str], on_event: EventSink) -> None:
        self._argv = list(argv)
        self._on_event = on_event
        self._lock = threading.Lock()
        self.tasks: list[Task] = []

    def start(self, task_id: str, revision: int, weight: float, env: Mapping[str, str]) -> Task:
        process = subprocess.Popen(
            self._argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # like a container: the demo's Ctrl-C is not the task's
        )
        task = Task(task_id, revision, weight, process, time.monotonic())
        with self._lock:
            self.tasks.append(task)
        threading.Thread(
            target=self._read_stderr, args=(task,), name=f"task-{task_id}", daemon=True
        ).start()
        return task

    def live(self) -> list[Task]:
        with self._lock:
            return [task for task in self.tasks if task.alive and not task.stopping]

    def stop(self, tasks: Sequence[Task], timeout_s: float) -> None:
        """What ECS does: SIGTERM to the task's main process, SIGKILL to all of it after the timeout."""
        for task in tasks:
            task.stopping = True
            _signal(task, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for task in tasks:
            try:
                task.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_tree(task)

    def kill(self, task: Task) -> None:
        """Chaos: the host died. No signal handler runs, in-flight work is left where it was."""
        task.killed = True
        _kill_tree(task)

    def stop_all(self, timeout_s: float) -> None:
        with self._lock:
            running = [task for task in self.tasks if task.alive]
        self.stop(running, timeout_s)

    def _read_stderr(self, task: Task) -> None:
        assert task.process.stderr is not None
        for raw in task.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            event = _json_event(line)
            if event is None:
                if line.strip():
                    task.tail.append(line)
                continue
            if event.get("event") == "redis_selected":
                task.side = str(event.get("side"))
                task.selections += 1
                if task.first_side is None:
                    task.first_side, task.first_reason = task.side, str(event.get("reason"))
            self._on_event(task, event)


def _json_event(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return document if isinstance(document, dict) and "event" in document else None


def _kill_tree(task: Task) -> None:
    """SIGKILL to the task and every descendant, as when ECS kills a container's cgroup.

    A process group is not enough: `cointoss supervise` may start its worker in a session of
    its own, which would outlive a group kill as an orphan.
    """
    import psutil

    family: list[psutil.Process] = []
    if task.process.poll() is None:  # not reaped yet, so the pid is still this task's
        with contextlib.suppress(psutil.NoSuchProcess):
            family = [psutil.Process(task.process.pid)]
            family += family[0].children(recursive=True)
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    task.process.wait()
    psutil.wait_procs(family[1:], timeout=5)


def _signal(task: Task, signum: signal.Signals) -> None:
    """A task that is already gone is not an error (it may have just exited on its own)."""
    with contextlib.suppress(ProcessLookupError):
        task.process.send_signal(signum)
