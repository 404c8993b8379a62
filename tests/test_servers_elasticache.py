"""Every command against ElastiCache-like servers: CONFIG, MIGRATE, SYNC, PSYNC, REPLICAOF,
SLAVEOF, SAVE, BGSAVE, BGREWRITEAOF, DEBUG and SHUTDOWN renamed away, the default user off, the
RBAC user most start from (`on ~* &* +@all -@dangerous`, so no INFO) and TLS (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from supervisor.demo.embedded_redis import RedisServer
from tests.conftest import elasticache_like, run_cointoss, write_tls_files
from tests.supervise_support import recorder, starts, supervise_env, wait_until

OLD_SECRET = "ec-Old-Secret-4Rm1"
NEW_SECRET = "ec-New-Secret-8Lz3"
ADMIN = "ec-Admin-2Qs6"
MARKER = "EC-PII-MARKER-71b"


@pytest.fixture
def pair(redis_factory: type[RedisServer], tmp_path: Path) -> tuple[RedisServer, RedisServer]:
    tls = write_tls_files(tmp_path)
    admin_user = (f"user admin on >{ADMIN} ~* &* +@all",)
    return (
        elasticache_like(redis_factory, tls, OLD_SECRET, extra=admin_user),
        elasticache_like(redis_factory, tls, NEW_SECRET, extra=admin_user),
    )


def admin(server: RedisServer) -> redis.Redis:
    assert server.tls is not None
    return redis.Redis(
        port=server.port,
        username="admin",
        password=ADMIN,
        ssl=True,
        ssl_ca_certs=str(server.tls.ca),
    )


def env_for(old: RedisServer, new: RedisServer, **extra: str) -> dict[str, str]:
    return {"MIGRATION_OLD_REDIS_URL": old.url, "MIGRATION_NEW_REDIS_URL": new.url, **extra}


def job(jid: str) -> str:
    return json.dumps({"class": "Job", "jid": jid, "args": [MARKER], "created_at": 1.0})


def assert_clean(*outputs: str) -> None:
    for output in outputs:
        for secret in (OLD_SECRET, NEW_SECRET, ADMIN, MARKER):
            assert secret not in output


def test_the_fixture_is_as_restricted_as_elasticache(pair: tuple[RedisServer, RedisServer]) -> None:
    old, _new = pair
    client = old.client()
    with pytest.raises(redis.ResponseError, match="unknown command"):
        client.config_get("maxmemory-policy")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.info()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=old.port, ssl=True, ssl_ca_certs=str(old.tls.ca)).ping()  # type: ignore[union-attr]


def test_toss_and_exec(pair: tuple[RedisServer, RedisServer], tmp_path: Path) -> None:
    old, new = pair
    admin(old).lpush("queue:default", job("q"))
    result = run_cointoss(["toss"], env_for(old, new))
    assert result.returncode == 0 and json.loads(result.stdout)["reason"] == "coin", result.stderr
    ran = tmp_path / "ran"
    result = run_cointoss(["exec", "--", "touch", str(ran)], env_for(old, new))
    assert result.returncode == 0 and ran.exists(), result.stderr
    assert_clean(result.stdout, result.stderr)


def test_status_and_migrate(pair: tuple[RedisServer, RedisServer]) -> None:
    old, new = pair
    admin(old).zadd("schedule", {job(str(n)): 4102444800 + n for n in range(50)})
    admin(old).zadd("retry", {job("r"): 4102444800})
    status = run_cointoss(["status", "--json"], env_for(old, new))
    assert status.returncode == 1, status.stderr
    doc = json.loads(status.stdout)
    assert doc["verdict"] == "only scheduled/retry left: run cointoss migrate"
    assert any("maxmemory-policy unknown" in w for w in doc["warnings"])
    moved = run_cointoss(["migrate"], env_for(old, new))
    assert moved.returncode == 0, moved.stderr
    assert admin(new).zcard("schedule") == 50 and admin(new).zcard("retry") == 1
    after = run_cointoss(["status", "--json"], env_for(old, new))
    assert json.loads(after.stdout)["verdict"] == "retirable", after.stderr
    assert_clean(status.stdout, status.stderr, moved.stdout, moved.stderr, after.stdout)


def test_supervise_with_auto_migrate(
    pair: tuple[RedisServer, RedisServer],
    supervised,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    old, new = pair
    admin(old).zadd("schedule", {job("s"): 4102444800})
    env = supervise_env(
        env_for(
            old,
            new,
            MIGRATION_NEW_WEIGHT="0.01",
            MIGRATION_SEED="0",
            MIGRATION_AUTO_MIGRATE="true",
            MIGRATION_DRAIN_CHECK_INTERVAL="0.2",
            MIGRATION_DRAIN_CONFIRMATIONS="2",
            MIGRATION_DRAIN_JITTER="0.1",
        )
    )
    start_file = tmp_path / "starts"
    sup = supervised(recorder(tmp_path / "signals", "--starts", str(start_file)), env)
    wait_until(lambda: len(starts(start_file)) == 2, timeout=60, what="the worker moved to NEW")
    assert [s["choice"] for s in starts(start_file)] == ["old", "new"]
    assert admin(new).zcard("schedule") == 1 and admin(old).zcard("schedule") == 0
    sup.send(15)
    assert sup.wait() == 0
    assert_clean(sup.log_path.read_text())
