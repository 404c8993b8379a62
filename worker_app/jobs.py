"""The job payload: Sidekiq's JSON, byte for byte.

Ruby's `JSON.generate` writes compact JSON with raw UTF-8 and unescaped `/`; Python's
`json.dumps(separators=(",", ":"), ensure_ascii=False)` writes the same bytes. Key order follows
Ruby's hash insertion order, which Python dicts preserve.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

Job = dict[str, Any]


class JobFormatError(ValueError):
    """A payload that is not a Sidekiq job: not JSON, not an object, or bad `class`/`args`."""


def new_jid() -> str:
    """`SecureRandom.hex(12)`: 24 lowercase hex characters."""
    return secrets.token_hex(12)


def now() -> float:
    """Epoch seconds as a float: what worker_app writes into every job timestamp and score.

    Sidekiq 6 and 7 write and read only this form, and Sidekiq 8 reads a float as seconds, so a
    float is the one form every version reads right (an integer would be milliseconds to 8).
    """
    return time.time()


def timestamp_s(stamp: object) -> float | None:
    """A job's `created_at`/`enqueued_at`/`failed_at`/`retried_at` in epoch seconds, read as
    Sidekiq 8 reads it: a JSON float is seconds (6.x, 7.x, worker_app), any other number is
    milliseconds (8.x writes integer epoch ms). None when it is no number at all.
    """
    if isinstance(stamp, float):
        return stamp
    if isinstance(stamp, int) and not isinstance(stamp, bool):
        return stamp / 1000
    return None


def dump_job(job: Job) -> bytes:
    """Compact UTF-8 JSON; NaN and Infinity are refused, as Ruby's generator refuses them."""
    try:
        return json.dumps(job, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise JobFormatError(f"job is not JSON-serialisable: {exc}") from None


def load_job(raw: bytes | str) -> Job:
    """Parses a payload; JobFormatError when it is not valid JSON or not a JSON object."""
    try:
        job = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JobFormatError(f"invalid JSON: {exc}") from None
    if not isinstance(job, dict):
        raise JobFormatError(f"a job is a JSON object, not {type(job).__name__}")
    return job


def _refuse_constant(name: str) -> None:
    """NaN and Infinity are not JSON (Ruby's parser refuses them too)."""
    raise ValueError(f"{name} is not valid JSON")


def build_job(
    job_class: str,
    args: list[Any],
    *,
    queue: str = "default",
    retry: bool | int = True,
    scheduled: bool = False,
    created_at: float | None = None,
) -> Job:
    """A new job in the key order Ruby's client produces.

    `perform_async` gives retry, queue, args, class, jid, created_at (enqueued_at follows at push
    time); `perform_in` gives retry, queue, class, args, jid, created_at.
    """
    if not isinstance(args, list):
        raise JobFormatError("job args must be a JSON array")
    if not queue:
        raise JobFormatError("job must include a valid queue name")
    body = {"class": job_class, "args": args} if scheduled else {"args": args, "class": job_class}
    return {
        "retry": retry,
        "queue": queue,
        **body,
        "jid": new_jid(),
        "created_at": now() if created_at is None else float(created_at),
    }


def normalize(job: Job) -> Job:
    """What Ruby's `normalize_item` adds to a job moved from a sorted set: defaults first."""
    if "class" not in job or not isinstance(job.get("args"), list):
        raise JobFormatError("job must have 'class' and an 'args' array")
    job = {"retry": True, "queue": "default", **job}
    job["queue"] = str(job["queue"] or "default")
    job.setdefault("jid", new_jid())
    job.setdefault("created_at", now())
    job.pop("at", None)
    return job
