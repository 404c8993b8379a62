"""The pre-toss checks against real redis-server processes: backlog, drained, stopped, hung, TLS."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from supervisor import constants as k
from supervisor.demo.embedded_redis import RedisServer, TlsFiles
from supervisor.errors import ConfigError, RedisUnavailableError
from supervisor.layouts.sidekiq import keys as sk
from supervisor.logs import configure, get_logger
from supervisor.settings import Settings
from supervisor.toss.identity import TaskIdentity
from supervisor.toss.selection import choose, rollout_id, selected_fields
from tests.conftest import write_tls_files

IDENTITY = TaskIdentity(hostname="ip-10-0-0-1")
ECS_IDENTITY = TaskIdentity(
    hostname="ip-10-0-0-2",
    task_arn="arn:aws:ecs:eu-west-1:123456789012:task/prod/0123abcd",
    family="workers",
    revision="42",
    az="eu-west-1a",
)
# Liveness bound only: a dead Redis may delay a start by ~2 s; this catches a hang.
START_BUDGET_S = 4.0
PASSWORD = "sel-Unique-Pw-5Qx"


def make_settings(new: RedisServer | str, old: RedisServer | str | None, **fields: Any) -> Settings:
    def url(server: RedisServer | str | None) -> str | None:
        return server.url if isinstance(server, RedisServer) else server

    return Settings(new_redis_url=url(new), old_redis_url=url(old), **fields)


class Events:
    """A real structlog pipeline writing JSON lines into memory."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        configure("json", self.stream)
        self.log = get_logger()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def named(self, name: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.text.splitlines()]
        return [line for line in lines if line["event"] == name]


@pytest.fixture
def events() -> Events:
    return Events()


def add_backlog(server: RedisServer, prefix: str = "") -> None:
    client = server.client()
    client.sadd(prefix + sk.QUEUES, "default")
    client.lpush(sk.queue_key(prefix, "default"), '{"class":"NoopJob","jid":"1"}')


def stopped_server(redis_factory: type[RedisServer], **kwargs: Any) -> RedisServer:
    """A server that ran on a port and is gone now: connection refused, as after a crash."""
    server = redis_factory(**kwargs).start()
    server.stop()
    return server


@contextlib.contextmanager
def hung(server: RedisServer) -> Iterator[None]:
    """SIGSTOP: the port still accepts TCP connections but nothing ever answers."""
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


class TestDrainAwareChoice:
    def test_backlog_on_old_lets_the_coin_decide(
        self, old_redis: RedisServer, new_redis: RedisServer, events: Events
    ) -> None:
        """With work queued on OLD, the side is the coin's, and both sides come up."""
        add_backlog(old_redis)
        sides = set()
        for seed in range(20):
            settings = make_settings(new_redis, old_redis, seed=seed)
            decision = choose(settings, IDENTITY, events.log)
            assert decision.reason == "coin"
            assert decision.url == (new_redis.url if decision.side == "new" else old_redis.url)
            sides.add(decision.side)
        assert sides == {"new", "old"}

    def test_empty_old_sends_every_worker_to_new(
        self, old_redis: RedisServer, new_redis: RedisServer, events: Events
    ) -> None:
        """A drained OLD wins over the coin: every start lands on NEW with reason old_drained."""
        for seed in range(10):
            decision = choose(make_settings(new_redis, old_redis, seed=seed), IDENTITY, events.log)
            assert (decision.side, decision.reason, decision.draw) == ("new", "old_drained", None)

    @pytest.mark.parametrize(
        ("setup", "drained"),
        [
            (lambda c: c.zadd(sk.SCHEDULE, {'{"jid":"s"}': time.time() + 3600}), False),
            (lambda c: c.zadd(sk.RETRY, {'{"jid":"r"}': time.time() + 60}), False),
            (lambda c: c.zadd(sk.DEAD, {'{"jid":"d"}': time.time()}), True),
            (lambda c: c.lpush("queue:critical", "{}"), False),  # a queue missing from `queues`
            (lambda c: (c.sadd(sk.PROCESSES, "w1"), c.hset("w1", "busy", "2")), False),
            (lambda c: c.sadd(sk.PROCESSES, "gone"), True),  # heartbeat expired: not live
        ],
        ids=["schedule", "retry", "dead-only", "unlisted-queue", "busy-process", "dead-process"],
    )
    def test_what_counts_as_drained(
        self,
        old_redis: RedisServer,
        new_redis: RedisServer,
        events: Events,
        setup: Any,
        drained: bool,
    ) -> None:
        """Scheduled, retry, queued or busy work keeps OLD undrained; dead jobs and stale
        process entries do not."""
        setup(old_redis.client())
        decision = choose(make_settings(new_redis, old_redis, seed=1), IDENTITY, events.log)
        assert (decision.reason == "old_drained") is drained

    def test_key_prefix_reads_the_namespaced_keys(
        self, old_redis: RedisServer, new_redis: RedisServer, events: Events
    ) -> None:
        """With MIGRATION_KEY_PREFIX the backlog under that namespace counts, and only it."""
        add_backlog(old_redis, prefix="myapp:")
        prefixed = make_settings(new_redis, old_redis, key_prefix="myapp:", seed=1)
        plain = make_settings(new_redis, old_redis, seed=1)
        assert choose(prefixed, IDENTITY, events.log).reason == "coin"
        assert choose(plain, IDENTITY, events.log).reason == "old_drained"

    def test_drain_preference_can_be_turned_off(
        self, old_redis: RedisServer, new_redis: RedisServer, events: Events
    ) -> None:
        """MIGRATION_PREFER_NEW_WHEN_DRAINED=false tosses even when OLD is empty."""
        settings = make_settings(new_redis, old_redis, prefer_new_when_drained=False, seed=1)
        assert choose(settings, IDENTITY, events.log).reason == "coin"


class TestUnreachable:
    def test_stopped_old_falls_back_to_new_with_a_warning(
        self, redis_factory: type[RedisServer], new_redis: RedisServer, events: Events
    ) -> None:
        """Policy `new`: a dead OLD sends the worker to NEW and says so, without the password."""
        old = stopped_server(redis_factory, password=PASSWORD)
        decision = choose(make_settings(new_redis, old), IDENTITY, events.log)
        assert (decision.side, decision.reason) == ("new", "old_unreachable")
        (warning,) = events.named("old_unreachable")
        assert warning["host"] == f"127.0.0.1:{old.port}"
        assert warning["policy"] == "new"
        assert PASSWORD not in events.text

    def test_stopped_old_with_policy_fail_exits_69(
        self, redis_factory: type[RedisServer], new_redis: RedisServer, events: Events
    ) -> None:
        """Policy `fail`: a dead OLD is a 69 naming OLD's host, never its password."""
        old = stopped_server(redis_factory, password=PASSWORD)
        settings = make_settings(new_redis, old, old_unreachable="fail")
        with pytest.raises(RedisUnavailableError) as caught:
            choose(settings, IDENTITY, events.log)
        assert caught.value.exit_code == 69
        assert str(caught.value).startswith(f"OLD Redis at 127.0.0.1:{old.port} is unreachable")
        assert PASSWORD not in str(caught.value) + events.text

    @pytest.mark.parametrize("old_state", ["backlog", "stopped"])
    def test_stopped_new_exits_69(
        self,
        redis_factory: type[RedisServer],
        old_redis: RedisServer,
        events: Events,
        old_state: str,
    ) -> None:
        """Producers already write to NEW: a dead NEW stops the start with 69, whatever OLD is."""
        new = stopped_server(redis_factory, password=PASSWORD)
        add_backlog(old_redis)
        old = stopped_server(redis_factory) if old_state == "stopped" else old_redis
        with pytest.raises(RedisUnavailableError) as caught:
            choose(make_settings(new, old), IDENTITY, events.log)
        assert str(caught.value).startswith(f"NEW Redis at 127.0.0.1:{new.port} is unreachable")
        assert PASSWORD not in str(caught.value) + events.text

    def test_wrong_password_on_old_is_a_config_error(
        self, redis_factory: type[RedisServer], new_redis: RedisServer, events: Events
    ) -> None:
        """A rejected login is not an outage (78, whatever the OLD policy), and the wrong secret
        stays hidden."""
        old = redis_factory(password="the-right-one").start()
        wrong = old.url.replace("the-right-one", PASSWORD)
        with pytest.raises(ConfigError) as caught:
            choose(make_settings(new_redis, wrong, old_unreachable="new"), IDENTITY, events.log)
        assert str(caught.value).startswith("MIGRATION_OLD_REDIS_URL: OLD Redis at 127.0.0.1:")
        assert "WRONGPASS" in str(caught.value)
        assert PASSWORD not in str(caught.value) + events.text

    @pytest.mark.parametrize("weight", [0.0, 1.0])
    def test_weight_overrides_touch_no_redis(
        self, redis_factory: type[RedisServer], weight: float, events: Events
    ) -> None:
        """Weight 0 and 1 decide without any check, so a start never waits on a dead Redis."""
        old, new = stopped_server(redis_factory), stopped_server(redis_factory)
        decision = choose(make_settings(new, old, new_weight=weight), IDENTITY, events.log)
        assert decision.side == ("new" if weight == 1 else "old")
        assert events.text == ""

    def test_layout_none_tosses_without_checks(
        self, redis_factory: type[RedisServer], events: Events
    ) -> None:
        """With MIGRATION_QUEUE_LAYOUT=none nothing is read from OLD, so it never looks drained."""
        old, new = stopped_server(redis_factory), stopped_server(redis_factory)
        decision = choose(make_settings(new, old, queue_layout="none"), IDENTITY, events.log)
        assert decision.reason == "coin"

    def test_hung_old_delays_the_start_only_briefly(
        self, redis_factory: type[RedisServer], new_redis: RedisServer, events: Events
    ) -> None:
        """An OLD that accepts connections but never answers costs one short timeout, then NEW."""
        old = redis_factory().start()
        with hung(old):
            started = time.monotonic()
            decision = choose(make_settings(new_redis, old), IDENTITY, events.log)
            elapsed = time.monotonic() - started
        assert decision.reason == "old_unreachable"
        assert elapsed < START_BUDGET_S

    def test_both_hung_give_69_within_the_start_budget(
        self, redis_factory: type[RedisServer], events: Events
    ) -> None:
        """Two silent servers still end the start quickly with 69 instead of hanging it."""
        old, new = redis_factory().start(), redis_factory().start()
        with hung(old), hung(new):
            started = time.monotonic()
            with pytest.raises(RedisUnavailableError):
                choose(make_settings(new, old), IDENTITY, events.log)
            elapsed = time.monotonic() - started
        assert elapsed < START_BUDGET_S


def test_ten_thousand_starts_at_point_three_stay_inside_binomial_bounds(events: Events) -> None:
    """10,000 unseeded starts at w=0.3 (each its own OS-seeded draw, as real starts are) put
    within 5 standard deviations of 3,000 on NEW."""
    n, weight = 10_000, 0.3
    settings = make_settings("redis://n/0", "redis://o/0", new_weight=weight, queue_layout="none")
    on_new = sum(choose(settings, IDENTITY, events.log).side == "new" for _ in range(n))
    assert abs(on_new - n * weight) < 5 * math.sqrt(n * weight * (1 - weight))


class TestEven:
    def test_ten_starts_at_point_three_put_three_on_new(
        self, old_redis: RedisServer, new_redis: RedisServer, events: Events
    ) -> None:
        """Ten tasks of one rollout take slots 1..10 on NEW and exactly three go NEW."""
        add_backlog(old_redis)
        settings = make_settings(new_redis, old_redis, new_weight=0.3, strategy="even")
        decisions = [choose(settings, ECS_IDENTITY, events.log) for _ in range(10)]
        assert [d.draw for d in decisions] == [float(n) for n in range(1, 11)]
        assert {d.reason for d in decisions} == {"even_sequence"}
        assert sum(d.side == "new" for d in decisions) == 3
        key = k.ROLLOUT_SEQUENCE.format(rollout="workers:42")
        client = new_redis.client()
        assert int(client.get(key)) == 10
        assert k.ROLLOUT_SEQUENCE_TTL_S - 60 < client.ttl(key) <= k.ROLLOUT_SEQUENCE_TTL_S

    def test_dry_run_peeks_without_taking_a_slot(
        self, old_redis: RedisServer, new_redis: RedisServer, events: Events
    ) -> None:
        """`cointoss toss` shows the next slot's side but leaves the counter for real tasks."""
        add_backlog(old_redis)
        settings = make_settings(
            new_redis, old_redis, new_weight=0.5, strategy="even", rollout_id="r"
        )
        assert choose(settings, IDENTITY, events.log, dry_run=True).draw == 1.0
        assert choose(settings, IDENTITY, events.log, dry_run=True).draw == 1.0
        assert new_redis.client().get(k.ROLLOUT_SEQUENCE.format(rollout="r")) is None
        assert choose(settings, IDENTITY, events.log).draw == 1.0
        assert choose(settings, IDENTITY, events.log, dry_run=True).draw == 2.0

    def test_unreachable_new_falls_back_to_random_and_logs_it(
        self, redis_factory: type[RedisServer], events: Events
    ) -> None:
        """Without checks, `even` on a dead NEW degrades to a fair toss and warns once."""
        old, new = stopped_server(redis_factory), stopped_server(redis_factory)
        settings = make_settings(new, old, strategy="even", queue_layout="none", seed=3)
        decision = choose(settings, IDENTITY, events.log)
        assert (decision.strategy, decision.reason) == ("random", "coin")
        (warning,) = events.named("even_unavailable")
        assert warning["host"] == f"127.0.0.1:{new.port}"

    def test_rollout_id_prefers_the_setting_then_ecs(self) -> None:
        """The counter key is MIGRATION_ROLLOUT_ID, else Family:Revision, else `default`."""
        base = make_settings("redis://n/0", "redis://o/0")
        assert rollout_id(base, IDENTITY) == "default"
        assert rollout_id(base, ECS_IDENTITY) == "workers:42"
        named = make_settings("redis://n/0", "redis://o/0", rollout_id="blue")
        assert rollout_id(named, ECS_IDENTITY) == "blue"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a server certificate for 127.0.0.1 from trustme, as files redis-server reads."""
    return write_tls_files(tmp_path_factory.mktemp("tls"))


class TestTlsAcl:
    """ElastiCache with in-transit encryption and RBAC: rediss://user:pass@...?ssl_ca_certs=..."""

    def test_drain_check_reads_old_over_tls_as_an_acl_user(
        self,
        redis_factory: type[RedisServer],
        new_redis: RedisServer,
        tls_files: TlsFiles,
        events: Events,
    ) -> None:
        """Over TLS with an ACL user, a backlog lets the coin decide and an empty OLD sends NEW."""
        old = redis_factory(username="worker", password=PASSWORD, tls=tls_files).start()
        assert old.url.startswith(f"rediss://worker:{PASSWORD}@") and "ssl_ca_certs=" in old.url
        settings = make_settings(new_redis, old, seed=1)
        assert choose(settings, IDENTITY, events.log).reason == "old_drained"
        add_backlog(old)
        assert choose(settings, IDENTITY, events.log).reason == "coin"
        assert PASSWORD not in events.text

    def test_tls_new_with_acl_answers_the_check(
        self,
        redis_factory: type[RedisServer],
        old_redis: RedisServer,
        tls_files: TlsFiles,
        events: Events,
    ) -> None:
        """NEW behind TLS and ACL passes the reachability check; a wrong password is a 78."""
        new = redis_factory(username="worker", password=PASSWORD, tls=tls_files).start()
        add_backlog(old_redis)
        assert choose(make_settings(new, old_redis, seed=1), IDENTITY, events.log).reason == "coin"
        wrong = new.url.replace(PASSWORD, "not-" + PASSWORD[::-1])
        with pytest.raises(ConfigError) as caught:
            choose(make_settings(wrong, old_redis), IDENTITY, events.log)
        assert "WRONGPASS" in str(caught.value)
        assert PASSWORD[::-1] not in str(caught.value) + events.text


def test_selected_fields_carry_every_design_field(old_redis: RedisServer) -> None:
    """`redis_selected` has every field, the URL with its password masked, argv[0] only."""
    settings = make_settings(f"redis://app:{PASSWORD}@127.0.0.1:7000/0", old_redis, new_weight=1)
    decision = choose(settings, ECS_IDENTITY, get_logger())
    fields = selected_fields(settings, decision, ECS_IDENTITY, "bundle")
    assert fields == {
        "side": "new",
        "reason": "weight_is_1",
        "weight": 1.0,
        "strategy": "random",
        "draw": None,
        "url": "redis://app:***@127.0.0.1:7000/0",
        "host": "127.0.0.1:7000",
        "task_arn": ECS_IDENTITY.task_arn,
        "family": "workers",
        "revision": "42",
        "rollout": "workers:42",
        "az": "eu-west-1a",
        "hostname": "ip-10-0-0-2",
        "pid": os.getpid(),
        "command": "bundle",
    }


@pytest.mark.parametrize("role", ["new", "old"])
@pytest.mark.parametrize("option", ["socket_timeout=soon", "sslmode=require", "db=x"])
def test_url_option_redis_py_rejects_is_a_config_error(
    old_redis: RedisServer, new_redis: RedisServer, events: Events, role: str, option: str
) -> None:
    """A query option redis-py refuses is exit 78 naming the variable, not an internal error."""
    bad = f"redis://:{PASSWORD}@127.0.0.1:{new_redis.port}/0?{option}"
    add_backlog(old_redis)
    settings = (
        make_settings(bad, old_redis, old_unreachable="new")
        if role == "new"
        else make_settings(new_redis, bad, old_unreachable="new")
    )
    with pytest.raises(ConfigError) as caught:
        choose(settings, IDENTITY, events.log)
    assert str(caught.value).startswith(f"MIGRATION_{role.upper()}_REDIS_URL: ")
    assert PASSWORD not in str(caught.value) + events.text
