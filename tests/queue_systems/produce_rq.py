"""Enqueues ledger jobs with real RQ: `produce_rq.py URL KIND START COUNT [SECONDS]`.

KIND: queued (enqueue; each run takes SECONDS), later (enqueue_in SECONDS), flaky (fails once,
retried after 1 s), broken (always fails: its function does not exist).
"""

from __future__ import annotations

import sys
from datetime import timedelta

import redis
import rqjobs
from rq import Queue, Retry

url, kind, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
queue = Queue("default", connection=redis.Redis.from_url(url))
jids = [f"{kind}-{i}" for i in range(start, start + count)]
if kind == "queued":
    queue.enqueue_many([Queue.prepare_data(rqjobs.record, (jid, seconds)) for jid in jids])
elif kind == "later":
    for jid in jids:
        queue.enqueue_in(timedelta(seconds=seconds), rqjobs.record, jid)
elif kind == "flaky":
    for jid in jids:
        queue.enqueue(rqjobs.flaky, jid, retry=Retry(max=1, interval=1))
else:
    for jid in jids:
        queue.enqueue("rqjobs.missing", jid)
print("\n".join(jids))
