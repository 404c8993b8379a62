"""What happens to a job that raised: Sidekiq 6.4's JobRetry, as a pure function.

`retry` true means up to 25 retries, N means N, 0 means straight to `dead` (0 is truthy in Ruby),
false means dropped (Sidekiq runs death handlers only). `dead: false` skips the morgue.
"""

from __future__ import annotations

import base64
import json
import random
import zlib
from dataclasses import dataclass
from typing import Literal

from worker_app.jobs import Job, dump_job

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


def backoff_seconds(count: int, jitter: int) -> int:
    """`count**4 + 15 + rand(10)*(count+1)`, with `jitter` = rand(10)."""
    return count**4 + 15 + jitter * (count + 1)


def on_failure(
    job: Job, failure: Failure, queue: str, at: float, jitter: int | None = None
) -> Outcome:
    """The job's next state; `job` is not modified."""
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
    if count < max_retries(option):
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
