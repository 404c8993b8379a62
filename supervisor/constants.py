"""cointoss's own Redis keys and limits; each queue system's key names live in its layout."""

from __future__ import annotations

# --- cointoss's own keys (never prefixed: they belong to no queue system).
ROLLOUT_SEQUENCE = "cointoss:rollout:{rollout}:seq"  # INCR counter for the `even` strategy
ROLLOUT_SEQUENCE_TTL_S = 7 * 24 * 3600  # a rollout's counter outlives any deployment
DEFAULT_ROLLOUT = "default"
MIGRATE_JOURNAL_PREFIX = "cointoss:migrate:journal:"  # on OLD: hash per claimed batch, + batch id
MIGRATE_SEQUENCE = "cointoss:migrate:sequence"  # on OLD: INCR counter, a journal's `seq`
MIGRATE_APPLIED = "cointoss:migrate:applied"  # on NEW: zset of applied batch ids, scored by time
MIGRATE_APPLIED_TTL_S = 14 * 24 * 3600  # a batch marker outlives any plausible resume
SAME_SERVER_PROBE_PREFIX = "cointoss:migrate:probe:"  # on NEW, for a moment: which server is which
MIGRATE_BATCH_MAX_BYTES = 4 * 1024 * 1024  # one claim never carries more (plus one member)
AUTOMIGRATE_LOCK = "cointoss:automigrate:lock"  # on OLD: SET NX PX <owner>; one auto-mover
AUTOMIGRATE_LOCK_TTL_MS = 60_000  # renewed after every batch; a dead holder frees it in a minute

# --- how long a pre-exec check may hold up a worker's start
CHECK_TIMEOUT_S = 0.9
SCAN_BATCH = 1000
SCAN_MAX_CALLS = 200  # past this a keyspace is "not known to be drained", never "drained"
