"""The smallest ACL each command needs, exactly as README's "Servers and permissions" lists it:
each test creates users with those rules and nothing more, and runs the command end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import redis

from supervisor.demo.embedded_redis import RedisServer
from tests.conftest import REPO_ROOT, heartbeat, run_cointoss
from tests.supervise_support import recorder, starts, supervise_env, wait_until

SECRET = "acl-Secret-6Tn4"
ADMIN = "acl-Admin-1Vb7"

# Copied from README (a test below checks they are still there, word for word).
ACLS = {
    "toss OLD": "+ping +hello +smembers +scan +hget +hmget +pttl +llen +zcard ~*",
    "toss NEW": "+ping +hello",
    "even NEW": "+ping +hello +incrby +expire +get +multi +exec ~cointoss:rollout:*",
    "status": "+ping +hello +smembers +scan +hget +hmget +pttl +llen +zcard +lindex +zrange ~*",
    "migrate OLD": (
        "+ping +hello +exists +type +scan +smembers +hmget +pttl +hgetall +del +zcount +llen"
        " +script|load +evalsha +zrangebyscore +zremrangebyrank +lrange +ltrim +hset +incr +time ~*"
    ),
    "migrate NEW": (
        "+ping +hello +set +del +type +script|load +evalsha +watch +unwatch +zscore +multi +exec"
        " +zadd +zremrangebyscore +expire +rpush +sadd +hset +pexpireat ~*"
    ),
    "auto-migrate OLD": "+set +get +pexpire ~*",  # on top of "toss OLD" and "migrate OLD"
}


def users(factory: type[RedisServer], *rules: str) -> RedisServer:
    """A server whose `worker` has exactly `rules` (joined), and an `admin` for the test."""
    return factory(
        username="worker",
        password=SECRET,
        acl=" ".join(rules),
        extra_args=(f"user admin on >{ADMIN} ~* &* +@all",),
    ).start()


def admin(server: RedisServer) -> redis.Redis:
    """The test's own connection (the URL's user is the one under test)."""
    return redis.Redis(port=server.port, username="admin", password=ADMIN)


def urls(old: RedisServer, new: RedisServer, **extra: str) -> dict[str, str]:
    return {"MIGRATION_OLD_REDIS_URL": old.url, "MIGRATION_NEW_REDIS_URL": new.url, **extra}


def seed(client) -> None:  # type: ignore[no-untyped-def]
    """Something in every key a command reads: queues, schedule, retry, dead, a live process."""
    client.sadd("queues", "default")
    client.lpush("queue:default", json.dumps({"jid": "q", "enqueued_at": 1.0}))
    for key in ("schedule", "retry", "dead"):
        client.zadd(key, {json.dumps({"jid": key, "created_at": 1.0}): 4102444800})
    client.hset("it-schedule", mapping={"ex": 1, "c": "10"})  # Sidekiq 7.3+ iterable state
    client.expire("it-schedule", 86400)
    heartbeat(client, "host:1:abc", busy=0)


# INFO and CONFIG GET (6.2 logs `config`) are asked only to show maxmemory-policy (refused, it is reported unknown
# with a warning); redis-py's handshake tries CLIENT SETINFO (and more) and ignores a refusal;
# PEXPIRETIME (7.0+) reads an iterable state's expiry to the ms, else TIME + PTTL do.
OPTIONAL = frozenset({"info", "config", "config|get", "client", "client|setinfo", "pexpiretime"})


def denied(server: RedisServer) -> list[str]:
    """What the ACL refused, from the server's own ACL LOG (empty when nothing was)."""
    return [
        f"{entry['reason']} {entry['object']}"
        for entry in admin(server).acl_log()
        if entry.get("username") == "worker" and entry["object"] not in OPTIONAL
    ]


def test_the_readme_lists_these_acls() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Servers and permissions", 1)[1].split("\n## ", 1)[0]
    for rules in ACLS.values():
        assert rules in section, rules


@pytest.mark.parametrize("command", ["toss", "exec"])
def test_toss_and_exec(command: str, redis_factory: type[RedisServer], tmp_path: Path) -> None:
    old, new = users(redis_factory, ACLS["toss OLD"]), users(redis_factory, ACLS["toss NEW"])
    seed(admin(old))
    args = ["toss"] if command == "toss" else ["exec", "--", "touch", str(tmp_path / "ran")]
    result = run_cointoss(args, urls(old, new, MIGRATION_NEW_WEIGHT="0.5"))
    assert result.returncode == 0, result.stderr
    assert command == "toss" or (tmp_path / "ran").exists()
    admin(old).delete("queue:default", "schedule", "retry")  # drained: the toss must say so
    result = run_cointoss(["toss"], urls(old, new, MIGRATION_NEW_WEIGHT="0.5"))
    assert json.loads(result.stdout)["reason"] == "old_drained", result.stderr
    assert denied(old) == denied(new) == []


def test_even_strategy(redis_factory: type[RedisServer], tmp_path: Path) -> None:
    old, new = users(redis_factory, ACLS["toss OLD"]), users(redis_factory, ACLS["even NEW"])
    seed(admin(old))
    env = urls(old, new, MIGRATION_NEW_WEIGHT="0.5", MIGRATION_STRATEGY="even")
    assert json.loads(run_cointoss(["toss"], env).stdout)["reason"] == "even_sequence"
    result = run_cointoss(["exec", "--", "true"], env)
    assert result.returncode == 0, result.stderr
    assert '"even_sequence"' in result.stderr
    assert denied(old) == denied(new) == []


def test_status(redis_factory: type[RedisServer]) -> None:
    """Read-only rules are enough; the same-server probe's write on NEW, refused, is skipped."""
    old, new = users(redis_factory, ACLS["status"]), users(redis_factory, ACLS["status"])
    seed(admin(old))
    result = run_cointoss(["status", "--json"], urls(old, new))
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["old"]["queues"]["default"]["size"] == 1 and doc["old"]["live_processes"] == 1
    assert doc["new"]["version"]
    assert denied(old) == [] and denied(new) == ["command set"]


def test_migrate(redis_factory: type[RedisServer]) -> None:
    old, new = users(redis_factory, ACLS["migrate OLD"]), users(redis_factory, ACLS["migrate NEW"])
    seed(admin(old))
    admin(old).delete("host:1:abc")  # no live process: --follow may end
    env = urls(old, new)
    assert run_cointoss(["migrate", "--dry-run"], env).returncode == 0
    result = run_cointoss(["migrate", "--only", "schedule,retry,dead,queues", "--follow"], env)
    assert result.returncode == 0, result.stderr
    assert re.search(r"total\s+4\b", result.stdout), result.stdout
    assert admin(new).zcard("schedule") == admin(new).llen("queue:default") == 1
    assert admin(new).hgetall("it-schedule") == {b"ex": b"1", b"c": b"10"}
    assert 0 < admin(new).ttl("it-schedule") <= 86400
    assert denied(old) == denied(new) == []


@pytest.mark.parametrize("auto_migrate", [False, True])
def test_supervise(
    auto_migrate: bool,
    redis_factory: type[RedisServer],
    supervised,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """The drain watch moves the worker to NEW once OLD drains; with auto-migrate the
    supervisor moves OLD's scheduled jobs itself, which is what drains it."""
    old_rules = [ACLS["toss OLD"]]
    new_rules = [ACLS["toss NEW"]]
    if auto_migrate:
        old_rules += [ACLS["migrate OLD"], ACLS["auto-migrate OLD"]]
        new_rules += [ACLS["migrate NEW"]]
    old, new = users(redis_factory, *old_rules), users(redis_factory, *new_rules)
    admin(old).zadd("schedule", {"job": 4102444800})
    env = supervise_env(
        urls(
            old,
            new,
            MIGRATION_NEW_WEIGHT="0.01",
            MIGRATION_SEED="0",
            MIGRATION_DRAIN_CHECK_INTERVAL="0.2",
            MIGRATION_DRAIN_CONFIRMATIONS="2",
            MIGRATION_DRAIN_JITTER="0.1",
            MIGRATION_AUTO_MIGRATE=str(auto_migrate).lower(),
        )
    )
    start_file = tmp_path / "starts"
    sup = supervised(recorder(tmp_path / "signals", "--starts", str(start_file)), env)
    wait_until(lambda: starts(start_file), what="the worker on OLD")
    if not auto_migrate:
        admin(old).delete("schedule")
    wait_until(lambda: len(starts(start_file)) == 2, timeout=60, what="the worker on NEW")
    assert starts(start_file)[1]["choice"] == "new"
    assert admin(new).zcard("schedule") == (1 if auto_migrate else 0)
    assert denied(old) == denied(new) == []
    sup.send(15)
    assert sup.wait() == 0
