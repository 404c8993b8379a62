"""The Celery app of the layout tests: each run is counted on the broker it was consumed from.

The broker comes from CELERY_BROKER_URL (what `cointoss exec` exports), the result backend from
CELERY_RESULT_BACKEND when set. TEST_ACKS_LATE=1 turns task_acks_late on.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

app = Celery("cointoss_tests")
app.conf.update(
    broker_connection_retry_on_startup=True,
    task_acks_late=os.environ.get("TEST_ACKS_LATE") == "1",
    worker_hijack_root_logger=False,
)


def _count(jid: str) -> None:
    redis.Redis.from_url(app.conf.broker_read_url or app.conf.broker_url).hincrby("ledger", jid, 1)


@app.task
def record(jid: str, seconds: float = 0.0) -> str:
    """One run of `jid`, recorded in `ledger` on the Redis this worker consumes."""
    time.sleep(seconds)
    _count(jid)
    return jid


@app.task(bind=True, max_retries=1)
def flaky(self, jid: str) -> None:  # type: ignore[no-untyped-def]
    """Fails its first attempt: Celery publishes the retry with an ETA one second later."""
    if self.request.retries == 0:
        raise self.retry(countdown=1)
    _count(jid)
