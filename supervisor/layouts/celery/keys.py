"""kombu's Redis transport key names (kombu 5.5-5.7).

Every name takes the transport's `global_keyprefix` (MIGRATION_KEY_PREFIX) verbatim in front.
"""

from __future__ import annotations

SEP = "\x06\x16"  # kombu's separator in binding members and priority list names
PRIORITY_STEPS = ("", "3", "6", "9")  # list suffixes; step 0 is the bare queue name
DEFAULT_QUEUE = "celery"
BINDING_PREFIX = "_kombu.binding."  # set per exchange: routing_key SEP pattern SEP queue
UNACKED = "unacked"  # hash delivery tag -> [message, exchange, routing_key]
UNACKED_INDEX = "unacked_index"  # zset delivery tag -> delivery time
RESULT_PREFIX = "celery-task-meta-"  # the result backend's strings, when it shares the Redis
REDBEAT_PREFIX = "redbeat:"  # celery-redbeat's schedule: cron state
# Exchanges and queues of Celery's own plumbing (remote control, events): never work.
PLUMBING_SUFFIXES = (".pidbox", "celeryev")


def priority_list(queue: str, step: str) -> str:
    return queue + SEP + step if step else queue
