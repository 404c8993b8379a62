"""One event, one JSON line short enough for one atomic write to a pipe.

Under `cointoss supervise` the supervisor and its worker share one stderr, the container's log
stream. POSIX makes a write of at most PIPE_BUF bytes to a pipe atomic: it never interleaves
with another writer's. So each event is rendered as one line (structlog's `WriteLogger` adds the
newline and writes both in one call) and kept within PIPE_BUF by cutting its longest values,
each cut marked, rather than split over two writes that another process could slip between.

Dependency-free on purpose: `worker_app` and `supervisor` both render with it (`supervisor` may
import `worker_app`, never the reverse).
"""

from __future__ import annotations

import json
import select
from collections.abc import MutableMapping
from typing import Any

PIPE_BUF: int = getattr(select, "PIPE_BUF", 4096)
# What is left of a value after a cut, so that a reader sees it was cut and by how much.
CUT_MARK = "...[cut {n} chars]"
_ROOM_FOR_MARK = len(CUT_MARK) + 24  # the count, and the quotes of a value turned into a string


def _dumps(value: Any) -> str:
    """As structlog's JSONRenderer: anything json cannot encode is written as its repr."""
    return json.dumps(value, default=repr)


def cut(text: str, budget: int) -> str:
    """`text` cut so that, JSON-encoded, it takes `budget` bytes at most (plus its mark)."""
    if len(_dumps(text)) <= budget:
        return text
    keep = min(len(text), budget)
    while keep > 0 and len(_dumps(text[:keep])) > budget:
        # escapes (\\n, \\uXXXX) make a character take up to 6 bytes: shrink in proportion
        keep = min(keep - 1, keep * budget // len(_dumps(text[:keep])))
    return text[:keep] + CUT_MARK.format(n=len(text) - keep)


class JSONLine:
    """A structlog renderer: the event as one JSON line of at most `limit` bytes (it is ASCII:
    `json.dumps` escapes the rest), leaving room for the newline `WriteLogger` adds.

    Only an oversized event pays for fitting: the longest value is cut first (an error text, a
    traceback), then the next, and an event that still does not fit keeps only its name, level
    and timestamp, with `cut: true`.
    """

    def __init__(self, limit: int = PIPE_BUF - 1) -> None:
        self.limit = limit

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> str:
        line = _dumps(event)
        return line if len(line) <= self.limit else self._fit(dict(event), len(line))

    def _fit(self, event: dict[str, Any], size: int) -> str:
        for _ in range(len(event)):
            sizes = {key: len(_dumps(value)) for key, value in event.items()}
            key = max(sizes, key=lambda k: sizes[k])
            value = event[key]
            text = value if isinstance(value, str) else _dumps(value)
            event[key] = cut(text, max(0, sizes[key] - (size - self.limit) - _ROOM_FOR_MARK))
            line = _dumps(event)
            if len(line) <= self.limit:
                return line
            size = len(line)
        kept = {
            key: cut(str(event[key]), 200)
            for key in ("event", "level", "timestamp")
            if key in event
        }
        return _dumps({**kept, "cut": True})
