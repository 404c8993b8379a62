"""What happens to a job that raised: Sidekiq's JobRetry, as a pure function.

`retry` true means up to 25 retries, N means N, 0 means straight to `dead` (0 is truthy in Ruby),
false means dropped (Sidekiq runs death handlers only). `dead: false` skips the morgue.
`retry_for` (Sidekiq 7.1.3+) replaces the count with a window: the job dies once `failed_at +
retry_for` has passed, whatever its `retry` count says (8.1's rule; 7.1.3 to 8.0 also applied the
count). `failed_at` may be float seconds or Sidekiq 8's integer milliseconds.
"""

from __future__ import annotations

import base64
import json
import random
import zlib
from dataclasses import dataclass
from typing import Literal

from worker_app.jobs import Job, dump_job, timestamp_s

DEFAULT_MAX_RETRIES = 25
MAX_MESSAGE_CHARS = 10_000


@dataclass(frozen=True)
class Failure:
    error_class: str
    message: str
    backtrace: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    target: Literal["retry", "dead", "drop"]
    score: float
    payload: bytes


def max_retries(option: object) -> int:
    """Ruby's `retry_attempts_from`: an Integer is the limit (true is not an Integer)."""
    return (
        option if isinstance(option, int) and not isinstance(option, bool) else DEFAULT_MAX_RETRIES
    )


def _retry_window_s(option: object) -> float | None:
    """`retry_for` in seconds, or None when the job has none and its count decides.

    Ruby tests `if rf`, so 0 is a window too, one that has passed at the first failure. A value
    that is not a number makes Sidekiq's retry handler raise; here it is ignored."""
    if isinstance(option, int | float) and not isinstance(option, bool):
        return float(option)
    return None


def _exhausted(msg: Job, count: int, limit: int, at: float) -> bool:
    """Sidekiq 8.1 (#6880): `retry_for` and a retry count are mutually exclusive, so a job with
    a window keeps retrying past 25 failures until the window closes, and no sooner dies."""
    window = _retry_window_s(msg.get("retry_for"))
    if window is None:
        return count >= limit
    first = timestamp_s(msg.get("failed_at"))
    # `<=` where Ruby has `<`: Ruby reads the clock again after stamping failed_at, so a zero
    # window has always passed by then; here both readings are the same `at`.
    return (at if first is None else first) + window <= at


def backoff_seconds(count: int, jitter: int) -> int:
    """`count**4 + 15 + rand(10)*(count+1)`, with `jitter` = rand(10)."""
    return count**4 + 15 + jitter * (count + 1)


def on_failure(
    job: Job, failure: Failure, queue: str, at: float, jitter: int | None = None
) -> Outcome:
    """The job's next state; `job` is not modified. Timestamps are written as float seconds."""
    at = float(at)
    msg = dict(job)
    option = msg.get("retry", True)
    if option is None:
        option = True  # Ruby: a nil retry takes the class default, which is true
    if option is False:
        return Outcome("drop", at, b"")
    msg["queue"] = msg.get("retry_queue") or queue
    msg["error_message"] = failure.message[:MAX_MESSAGE_CHARS]
    msg["error_class"] = failure.error_class
    if isinstance(msg.get("retry_count"), int):
        msg["retried_at"] = at
        msg["retry_count"] += 1
    else:
        msg["failed_at"] = at
        msg["retry_count"] = 0
    count = msg["retry_count"]
    lines = _backtrace_lines(msg.get("backtrace"), failure.backtrace)
    if lines is not None:
        msg["error_backtrace"] = compress_backtrace(lines)
    if not _exhausted(msg, count, max_retries(option), at):
        delay = backoff_seconds(count, random.randrange(10) if jitter is None else jitter)
        return Outcome("retry", at + delay, dump_job(msg))
    if msg.get("dead") is False:
        return Outcome("drop", at, b"")
    return Outcome("dead", at, dump_job(msg))


def compress_backtrace(lines: list[str]) -> str:
    """Base64 (Ruby's `encode64`: a newline every 60 chars) of zlib-deflated JSON."""
    raw = zlib.compress(json.dumps(lines, separators=(",", ":"), ensure_ascii=False).encode())
    return "".join(
        base64.b64encode(raw[i : i + 45]).decode() + "\n" for i in range(0, len(raw), 45)
    )


def _backtrace_lines(option: object, backtrace: tuple[str, ...]) -> list[str] | None:
    if option is None or option is False:
        return None
    if option is True:
        return list(backtrace)
    try:
        return list(backtrace[: int(option)])  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return list(backtrace)
