"""What the demo shows while it runs: a live panel on a terminal, plain lines anywhere else."""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any, TextIO

from supervisor.demo.chart import Sample

PLAIN_EVERY_S = 5.0
RECENT_EVENTS = 6


class Display:
    """Fed by the demo from several threads; draws at most a few times a second."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self._stream = stream or sys.stderr
        self._live_wanted = self._stream.isatty() if live is None else live
        self._lock = threading.Lock()
        self._phase = "starting"
        self._sample: Sample | None = None
        self._recent: deque[str] = deque(maxlen=RECENT_EVENTS)
        self._last_plain = 0.0
        self._live: Any = None
        self._t0 = time.monotonic()

    def __enter__(self) -> Display:
        if self._live_wanted:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                self._render(),
                console=Console(file=self._stream),
                refresh_per_second=4,
                transient=False,
            )
            self._live.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()

    def phase(self, text: str) -> None:
        with self._lock:
            self._phase = text
        self.note(text)

    def note(self, text: str) -> None:
        """A moment worth a line: a deployment, a kill, the mover."""
        t = time.monotonic() - self._t0
        with self._lock:
            self._recent.append(f"[{t:6.1f}s] {text}")
        if self._live is None:
            print(f"[{t:6.1f}s] {text}", file=self._stream, flush=True)
        else:
            self._live.update(self._render())

    def sample(self, sample: Sample) -> None:
        with self._lock:
            self._sample = sample
        if self._live is not None:
            self._live.update(self._render())
        elif time.monotonic() - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = time.monotonic()
            print(f"[{sample.t_s:6.1f}s] {_status_line(sample)}", file=self._stream, flush=True)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            sample, phase, recent = self._sample, self._phase, list(self._recent)
        table = Table(title=f"cointoss demo: {phase}", title_justify="left", expand=False)
        for column in ("", "queued", "schedule+retry", "tasks", "processed"):
            table.add_column(column, justify="right")
        if sample is not None:
            table.add_row(
                "OLD",
                str(sample.old_queued),
                str(sample.old_later),
                str(sample.tasks_old),
                str(sample.processed_old),
            )
            table.add_row(
                "NEW",
                str(sample.new_queued),
                str(sample.new_later),
                str(sample.tasks_new),
                str(sample.processed_new),
            )
            table.caption = f"{sample.t_s:.1f} s, {sample.tasks_starting} task(s) starting"
        return Group(table, Text("\n".join(recent), style="dim"))


def _status_line(sample: Sample) -> str:
    return (
        f"OLD queued {sample.old_queued} later {sample.old_later} tasks {sample.tasks_old}"
        f" | NEW queued {sample.new_queued} later {sample.new_later} tasks {sample.tasks_new}"
        f" | starting {sample.tasks_starting} | processed OLD {sample.processed_old}"
        f" NEW {sample.processed_new}"
    )
