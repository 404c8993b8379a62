"""Jobs for the real `rq worker` in the layout tests: each run is counted on the Redis it ran on."""

from __future__ import annotations

import time

from rq import get_current_job


def record(jid: str, seconds: float = 0.0) -> None:
    """One run of `jid`, recorded in `ledger` on the Redis this worker consumes."""
    time.sleep(seconds)
    job = get_current_job()
    job.connection.hincrby("ledger", jid, 1)


def flaky(jid: str) -> None:
    """Fails its first attempt (RQ puts the retry in `scheduled`), records the second."""
    if get_current_job().retries_left:  # Retry(max=1): 1 on the first attempt, then 0
        raise RuntimeError(f"{jid}: first attempt fails on purpose")
    record(jid)
