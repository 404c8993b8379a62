"""Gathers what the coin needs (OLD's state, a sequence number, a draw) and asks `decide`.

This is the I/O shell around the pure decision: Redis is only touched, and `redis` only
imported, when a check is on (0 < weight < 1 and a readable queue layout) or `even` needs NEW.
"""

from __future__ import annotations

import os
import random
from typing import Any

from supervisor import constants as k
from supervisor.redact import redact_text, url_host
from supervisor.servers.refusals import diagnose, raise_if_refused, read_only_error
from supervisor.settings import Settings, env_name
from supervisor.toss.decide import Coin, Decision, OldState, decide, sticky_draw
from supervisor.toss.identity import TaskIdentity

STICKY_SALT = "cointoss"


def choose(
    settings: Settings,
    identity: TaskIdentity,
    log: Any,
    *,
    dry_run: bool = False,
    rng: random.Random | None = None,
) -> Decision:
    """Runs the pre-toss checks, then the toss. Raises RedisUnavailableError (69) per policy,
    ConfigError (78) when a server refuses a command, ReadOnlyServerError (75) for a replica NEW."""
    old_state = observe(settings, log) if checks_on(settings) else OldState.UNCHECKED
    rng = rng or random.Random(settings.seed)
    sequence = None
    if settings.strategy == "even" and settings.decides_by_coin and old_state.allows_toss:
        sequence = next_sequence(settings, identity, log, peek=dry_run)
    coin = Coin(
        random_draw=rng.random(),
        sticky_draw=sticky_draw(identity.stable_key, settings.rollout_id or STICKY_SALT),
        sequence=sequence,
    )
    return decide(
        weight=settings.new_weight,
        strategy=settings.strategy,
        old=old_state,
        coin=coin,
        new_url=settings.new_redis_url,
        old_url=settings.old_redis_url,
    )


def checks_on(settings: Settings) -> bool:
    """Weight 0/1 are overrides, and an OLD whose layout we cannot read must never look drained."""
    return settings.decides_by_coin and settings.queue_layout != "none"


def observe(settings: Settings, log: Any) -> OldState:
    """OLD's state for the toss; NEW must answer (69 otherwise) since producers already use it."""
    from supervisor.connections import check_client, redis_errors, unreachable
    from supervisor.layouts import get_layout

    assert settings.old_redis_url is not None  # settings guarantee it below weight 1
    old_url = settings.old_redis_url
    try:
        old = check_client(old_url, variable=env_name("old_redis_url"))
        if settings.prefer_new_when_drained:
            layout = get_layout(settings)
            assert layout is not None  # checks_on
            backlog = layout.read_backlog(old)
            state = OldState.DRAINED if backlog.drained else OldState.BACKLOG
        else:
            old.ping()
            state = OldState.BACKLOG
    except redis_errors() as exc:
        raise_if_refused("OLD", old_url, env_name("old_redis_url"), exc)
        if settings.old_unreachable == "fail":
            raise unreachable("OLD", old_url, exc) from None
        log.warning(
            "old_unreachable",
            host=url_host(old_url),
            error=type(exc).__name__,
            detail=diagnose(exc).describe(),
            policy=settings.old_unreachable,
        )
        state = OldState.UNREACHABLE
    check_new_writable(settings.new_redis_url)
    return state


def check_new_writable(new_url: str) -> None:
    """NEW must answer (69) and take writes: a read-only replica (a failover, or a reader
    endpoint) would take the fleet's producers and workers and refuse them (75)."""
    from supervisor.connections import check_client, redis_errors, unreachable
    from supervisor.servers.facts import read_facts

    variable = env_name("new_redis_url")
    try:
        new = check_client(new_url, variable=variable)
        new.ping()
        read_only = read_facts(new, policy=False).read_only
    except redis_errors() as exc:
        raise_if_refused("NEW", new_url, variable, exc)
        raise unreachable("NEW", new_url, exc) from None
    if read_only:
        raise read_only_error("NEW", new_url, variable)


def rollout_id(settings: Settings, identity: TaskIdentity) -> str:
    """MIGRATION_ROLLOUT_ID, else ECS Family:Revision, else `default`."""
    return settings.rollout_id or identity.rollout or k.DEFAULT_ROLLOUT


def next_sequence(
    settings: Settings, identity: TaskIdentity, log: Any, *, peek: bool = False
) -> int | None:
    """This task's place k in the rollout (atomic INCR on NEW); None means fall back to random.

    A dry run peeks at the counter instead, so `cointoss toss` never takes a real task's slot.
    """
    from supervisor.connections import check_client, redis_errors

    key = k.ROLLOUT_SEQUENCE.format(rollout=rollout_id(settings, identity))
    try:
        client = check_client(settings.new_redis_url, variable=env_name("new_redis_url"))
        if peek:
            return int(client.get(key) or 0) + 1
        pipe = client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, k.ROLLOUT_SEQUENCE_TTL_S)
        sequence, _ = pipe.execute()
        return int(sequence)
    except redis_errors(ValueError) as exc:
        raise_if_refused("NEW", settings.new_redis_url, env_name("new_redis_url"), exc)
        log.warning(
            "even_unavailable",
            reason="new_unreachable_fell_back_to_random",
            error=type(exc).__name__,
            host=url_host(settings.new_redis_url),
        )
        return None


def decision_document(decision: Decision) -> dict[str, Any]:
    """The decision as `cointoss toss` prints it: safe to show (the URL is redacted)."""
    return {
        "side": decision.side,
        "reason": decision.reason,
        "weight": decision.weight,
        "strategy": decision.strategy,
        "draw": decision.draw,
        "url": redact_text(decision.url),
    }


def selected_fields(
    settings: Settings, decision: Decision, identity: TaskIdentity, command: str
) -> dict[str, Any]:
    """Every field of `redis_selected`; the URL goes out redacted."""
    return {
        **decision_document(decision),
        "host": url_host(decision.url),
        "task_arn": identity.task_arn,
        "family": identity.family,
        "revision": identity.revision,
        "rollout": rollout_id(settings, identity),
        "az": identity.az,
        "hostname": identity.hostname,
        "pid": os.getpid(),
        "command": command,
    }
