"""Celery's layout: kombu's Redis transport (kombu/celery 5.5-5.7).

Drained as far as Redis shows: every queue's priority lists empty and `unacked` empty (that
covers reserved, prefetched, ETA/countdown and retry-waiting messages). With Celery's default
early ack a running task leaves no trace in Redis at all, so OLD is then reported empty but
never retirable (`Backlog.unproven`) unless MIGRATION_CELERY_ACKS_LATE says the app acks late.
Celery keeps no worker registry: live consumers are the connections blocked in BRPOP.

Moves while OLD's workers live: queue list elements, each a self-contained message (the plain
list unit, the end BRPOP does not take, bytes verbatim). On request (`--only unacked`),
`unacked` entries older than the visibility timeout, as kombu's own restore would (lua.py).
Never: younger `unacked` entries (a worker holds them; it returns them on a warm shutdown),
running tasks, results.
"""
