"""RQ's layout (2.x and 3.0).

Drained: every queue list, intermediate list, `scheduled`, `deferred`, `ready` (3.0) and
rate-limited (3.0) set empty, no unexpired `wip` entry, and no live worker (its hash exists)
in state `busy`. RQ shows all of that in Redis, so a drained RQ is provably drained.
`failed` is reported and never blocks.

Moves while OLD's workers live: queued ids with their job hashes (oldest first, from the end
workers pop), scheduled ids with their hashes (all of them while no RQ scheduler holds
`rq:scheduler-lock:<q>`, else only those due past a margin), and on request failed jobs.
Never: in-flight jobs (intermediate, wip), deferred jobs (their parents release them on the
Redis where the parents finish), jobs held by a rate limiter.
"""
