"""Job timestamps as Sidekiq 8 reads them, so a 6.x, 7.x and 8.x job each get their true age.

Sidekiq 6.x and 7.x write `created_at`, `enqueued_at`, `failed_at` and `retried_at` as float
epoch seconds; 8.0 writes integer epoch milliseconds. 8.x tells them apart by JSON type alone
(api.rb `time_from_timestamp`, `Queue#latency`): a Float is seconds, any other number is
milliseconds. Sorted-set scores are float seconds in every version and never come through here.
"""

from __future__ import annotations

import json
import math
from typing import Any

MS_PER_S = 1000


def epoch_seconds(value: Any) -> float | None:
    """A parsed JSON timestamp in epoch seconds; None for a missing or non-numeric one.

    `json.loads` keeps Ruby's distinction: `1795983481.11` (and `1.0e+9`) come back as float,
    `1795976460174` as int. A bool is not a number here, though Python counts it as an int.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value) if isinstance(value, float) else value / MS_PER_S
    return seconds if math.isfinite(seconds) else None


def job_stamp(raw: bytes | str, *fields: str) -> float | None:
    """The first of `fields` the job JSON has, in epoch seconds (None when none is readable)."""
    try:
        job = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(job, dict):
        return None
    for name in fields:
        if job.get(name) is not None:
            return epoch_seconds(job[name])
    return None
