"""Publishes ledger tasks with real Celery: `produce_celery.py URL KIND START COUNT [SECONDS]`.

KIND: queued (each run takes SECONDS; every third at priority 9, every fifth at priority 4),
later (countdown SECONDS), flaky (fails once, retried after 1 s).
"""

from __future__ import annotations

import sys

import celeryapp

url, kind, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
celeryapp.app.conf.broker_url = url
jids = [f"c{kind}-{i}" for i in range(start, start + count)]
with celeryapp.app.producer_or_acquire() as producer:
    for n, jid in enumerate(jids):
        if kind == "queued":
            priority = 9 if n % 3 == 0 else 4 if n % 5 == 0 else 0
            celeryapp.record.apply_async((jid, seconds), priority=priority, producer=producer)
        elif kind == "later":
            celeryapp.record.apply_async((jid,), countdown=seconds, producer=producer)
        else:
            celeryapp.flaky.apply_async((jid,), producer=producer)
print("\n".join(jids))
