"""Refused commands, read-only replicas and refused URL options, on every path that meets them.

A refusal (NOPERM, NOAUTH, WRONGPASS, a renamed or disabled command) is 78 naming the variable,
the command and what to grant; a read-only replica is 75; only silence is 69 (issue 11).
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import redis

from supervisor import constants as k
from supervisor.demo.embedded_redis import RedisServer
from tests.conftest import heartbeat, run_cointoss
from tests.supervise_support import recorder, starts, supervise_env, wait_until

SECRET = "errs-Secret-7Hq2"
ADMIN = "errs-Admin-3Kp9"
MARKER = "PII-MARKER-5f1c9e"  # job data that must never reach an output
BACKLOG = 100

# A user that may read keys but run neither INFO nor SCAN (issue 11, fault 2).
NO_INFO_NO_SCAN = "~* &* +@all -@dangerous -scan"


def guarded(factory: type[RedisServer], acl: str = "~* &* +@all", **options: object) -> RedisServer:
    """A server reached as `worker` with `acl`, plus an `admin` user the test uses itself."""
    extra = tuple(options.pop("extra_args", ()))  # type: ignore[arg-type]
    return factory(
        username="worker",
        password=SECRET,
        acl=acl,
        extra_args=(f"user admin on >{ADMIN} ~* &* +@all", *extra),
        **options,  # type: ignore[arg-type]
    ).start()


def admin(server: RedisServer) -> redis.Redis:
    """The test's own connection (the URL's user is the one under test)."""
    return redis.Redis(port=server.port, username="admin", password=ADMIN)


def job(jid: str) -> str:
    return f'{{"class":"Job","jid":"{jid}","args":["{MARKER}"],"queue":"default"}}'


def queue_jobs(client, count: int = BACKLOG) -> None:  # type: ignore[no-untyped-def]
    client.sadd("queues", "default")
    client.lpush("queue:default", *[job(str(n)) for n in range(count)])


def urls(old: RedisServer | str, new: RedisServer | str, **extra: str) -> dict[str, str]:
    def url(side: RedisServer | str) -> str:
        return side.url if isinstance(side, RedisServer) else side

    return {"MIGRATION_OLD_REDIS_URL": url(old), "MIGRATION_NEW_REDIS_URL": url(new), **extra}


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("cointoss: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def assert_clean(*outputs: str) -> None:
    for output in outputs:
        assert SECRET not in output and ADMIN not in output and MARKER not in output


class TestRefusedIsConfiguration:
    def test_old_user_without_info_and_scan_stops_every_start_with_78(
        self, redis_factory: type[RedisServer], new_redis: RedisServer, tmp_path: Path
    ) -> None:
        """OLD holds 100 queued jobs; three starts with policy `new` must not go to NEW."""
        old = guarded(redis_factory, NO_INFO_NO_SCAN)
        queue_jobs(admin(old))
        env = urls(old, new_redis, MIGRATION_OLD_UNREACHABLE="new", MIGRATION_NEW_WEIGHT="0.5")
        marker = tmp_path / "ran"
        for _start in range(3):
            result = run_cointoss(["exec", "--", "touch", str(marker)], env)
            assert result.returncode == 78, result.stderr
            line = one_line(result.stderr)
            assert line.startswith("cointoss: MIGRATION_OLD_REDIS_URL: OLD Redis at 127.0.0.1:")
            assert "'scan'" in line and "NOPERM" in line and "+scan" in line
            assert_clean(result.stdout, result.stderr)
        assert not marker.exists()
        assert admin(old).llen("queue:default") == BACKLOG

    @pytest.mark.parametrize("fault", ["wrongpass", "noauth"])
    def test_a_refused_login_is_78_not_unreachable(
        self, redis_factory: type[RedisServer], new_redis: RedisServer, fault: str
    ) -> None:
        old = guarded(redis_factory)
        queue_jobs(admin(old))
        url = (
            old.url.replace(SECRET, "not-the-" + SECRET[::-1])
            if fault == "wrongpass"
            else f"redis://127.0.0.1:{old.port}/0"
        )
        result = run_cointoss(["toss"], urls(url, new_redis, MIGRATION_OLD_UNREACHABLE="new"))
        assert result.returncode == 78, result.stderr
        line = one_line(result.stderr)
        assert line.startswith("cointoss: MIGRATION_OLD_REDIS_URL: ")
        assert ("WRONGPASS" if fault == "wrongpass" else "NOAUTH") in line
        assert_clean(result.stdout, result.stderr, SECRET[::-1])

    def test_a_renamed_command_is_78_naming_it(
        self, redis_factory: type[RedisServer], new_redis: RedisServer
    ) -> None:
        old = redis_factory(extra_args=('rename-command SCAN ""',)).start()
        queue_jobs(old.client())
        result = run_cointoss(["toss"], urls(old, new_redis, MIGRATION_OLD_UNREACHABLE="new"))
        assert result.returncode == 78, result.stderr
        assert "'scan'" in one_line(result.stderr) and "renamed or disabled" in result.stderr

    @pytest.mark.parametrize("command", ["status", "migrate"])
    def test_status_and_migrate_stop_with_78_on_a_refused_scan(
        self, redis_factory: type[RedisServer], new_redis: RedisServer, command: str
    ) -> None:
        old = guarded(redis_factory, "~* &* +@all -scan")
        admin(old).zadd("schedule", {job("s"): 1})
        result = run_cointoss([command], urls(old, new_redis))
        assert result.returncode == 78, result.stderr
        line = one_line(result.stderr)
        assert line.startswith("cointoss: MIGRATION_OLD_REDIS_URL: OLD Redis at ")
        assert "'scan'" in line
        assert admin(old).zcard("schedule") == 1
        assert_clean(result.stdout, result.stderr)

    def test_a_refused_heartbeat_read_is_78_not_an_idle_fleet(
        self, redis_factory: type[RedisServer], new_redis: RedisServer
    ) -> None:
        """Without PTTL the busy process would vanish and OLD would look drained (exit 0)."""
        old = guarded(redis_factory, "~* &* +@all -pttl")
        heartbeat(admin(old), "host:1:abc", busy=3)
        for command in (["status"], ["toss"]):
            result = run_cointoss(command, urls(old, new_redis))
            assert result.returncode == 78, result.stderr
            assert "'pttl'" in one_line(result.stderr)

    def test_a_command_refused_inside_a_lua_script_is_78(
        self, redis_factory: type[RedisServer], old_redis: RedisServer
    ) -> None:
        """The apply script RPUSHes on NEW; a user without RPUSH is refused inside Lua, which
        Redis 6.2/7.0 word differently from Redis 8 and Valkey: 78 either way, nothing lost."""
        new = guarded(redis_factory, "~* &* +@all -rpush")
        queue_jobs(old_redis.client(), 3)
        result = run_cointoss(["migrate", "--only", "queues"], urls(old_redis, new))
        assert result.returncode == 78, result.stderr
        line = one_line(result.stderr)
        assert line.startswith("cointoss: MIGRATION_NEW_REDIS_URL: NEW Redis at ")
        assert "'rpush'" in line or "inside one of cointoss's Lua scripts" in line
        old = old_redis.client()
        journals = list(old.scan_iter(match=k.MIGRATE_JOURNAL_PREFIX + "*"))
        assert old.llen("queue:default") + sum(int(old.hget(j, "count")) for j in journals) == 3
        assert_clean(result.stdout, result.stderr)

    def test_migrate_without_scripting_on_new_is_78_and_loses_nothing(
        self, redis_factory: type[RedisServer], old_redis: RedisServer
    ) -> None:
        """A queue list's apply needs Lua on NEW (a zset's can go without): 78, nothing lost."""
        new = guarded(redis_factory, "~* &* +@all -@scripting")
        queue_jobs(old_redis.client(), 1)
        result = run_cointoss(["migrate", "--only", "queues"], urls(old_redis, new))
        assert result.returncode == 78, result.stderr
        line = one_line(result.stderr)
        assert line.startswith("cointoss: MIGRATION_NEW_REDIS_URL: NEW Redis at ")
        assert re.search(r"'(script\|load|script|evalsha)'", line)  # 6.2 names 'script'
        old = old_redis.client()
        journals = list(old.scan_iter(match=k.MIGRATE_JOURNAL_PREFIX + "*"))
        assert old.llen("queue:default") + sum(int(old.hget(j, "count")) for j in journals) == 1
        assert admin(new).llen("queue:default") == 0
        assert_clean(result.stdout, result.stderr)

    def test_supervise_drain_watch_stops_with_78_when_old_starts_refusing(
        self, redis_factory: type[RedisServer], new_redis: RedisServer, supervised, tmp_path: Path
    ) -> None:  # type: ignore[no-untyped-def]
        """The permission goes away after the start: the watch stops the worker and exits 78."""
        old = guarded(redis_factory)
        queue_jobs(admin(old))
        env = supervise_env(
            urls(
                old,
                new_redis,
                MIGRATION_NEW_WEIGHT="0.01",
                MIGRATION_SEED="0",
                MIGRATION_DRAIN_CHECK_INTERVAL="0.2",
            )
        )
        start_file = tmp_path / "starts"
        sup = supervised(recorder(tmp_path / "signals", "--starts", str(start_file)), env)
        (first,) = wait_until(lambda: starts(start_file), what="the worker on OLD")
        assert first["choice"] == "old"
        admin(old).execute_command("ACL", "SETUSER", "worker", "-scan")
        assert sup.wait() == 78
        (event,) = sup.events("drain_check_refused")
        assert event["error"].startswith("MIGRATION_OLD_REDIS_URL: OLD Redis at ")
        text = sup.log_path.read_text()
        assert "cointoss: MIGRATION_OLD_REDIS_URL:" in text and "'scan'" in text
        assert_clean(text)

    def test_auto_migrate_refused_on_old_stops_the_supervisor_with_78(
        self, redis_factory: type[RedisServer], new_redis: RedisServer, supervised, tmp_path: Path
    ) -> None:  # type: ignore[no-untyped-def]
        """OLD lets the watch read but not run Lua: auto-migrate's refusal is 78, not a retry."""
        old = guarded(redis_factory, "~* &* +@all -@scripting")
        admin(old).zadd("schedule", {job("s"): 4102444800})
        env = supervise_env(
            urls(
                old,
                new_redis,
                MIGRATION_NEW_WEIGHT="0.01",
                MIGRATION_SEED="0",
                MIGRATION_AUTO_MIGRATE="true",
                MIGRATION_DRAIN_CHECK_INTERVAL="0.2",
            )
        )
        sup = supervised(recorder(tmp_path / "signals"), env)
        assert sup.wait() == 78
        (failed,) = sup.events("auto_migrate_failed")
        assert failed["exit_code"] == 78 and re.search(r"'script(\|load)?'", failed["detail"])
        assert admin(old).zcard("schedule") == 1
        assert_clean(sup.log_path.read_text())


class TestReadOnlyReplica:
    @pytest.fixture
    def replica(self, redis_factory: type[RedisServer], old_redis: RedisServer) -> RedisServer:
        """A read-only replica of another server, as NEW after a failover or a reader endpoint."""
        primary = redis_factory().start()
        return redis_factory(extra_args=(f"replicaof 127.0.0.1 {primary.port}",)).start()

    def test_toss_and_exec_refuse_a_read_only_new_with_75(
        self, replica: RedisServer, old_redis: RedisServer, tmp_path: Path
    ) -> None:
        queue_jobs(old_redis.client())
        marker = tmp_path / "ran"
        for args in (["toss"], ["exec", "--", "touch", str(marker)]):
            result = run_cointoss(args, urls(old_redis, replica))
            assert result.returncode == 75, result.stderr
            line = one_line(result.stderr)
            assert line.startswith("cointoss: MIGRATION_NEW_REDIS_URL: NEW Redis at ")
            assert "read-only replica" in line
        assert not marker.exists()

    def test_status_refuses_a_read_only_new_with_75(
        self, replica: RedisServer, old_redis: RedisServer
    ) -> None:
        result = run_cointoss(["status"], urls(old_redis, replica))
        assert result.returncode == 75, result.stderr
        assert "read-only replica" in one_line(result.stderr)

    def test_migrate_to_a_read_only_new_is_75_and_no_job_data_is_printed(
        self, replica: RedisServer, old_redis: RedisServer
    ) -> None:
        old = old_redis.client()
        old.zadd("schedule", {job(str(n)): n for n in range(10)})
        result = run_cointoss(["migrate"], urls(old_redis, replica))
        assert result.returncode == 75, result.stderr
        assert "read-only replica" in one_line(result.stderr)
        assert old.zcard("schedule") == 10
        assert_clean(result.stdout, result.stderr)

    def test_migrate_from_a_read_only_old_is_75(
        self, replica: RedisServer, new_redis: RedisServer
    ) -> None:
        result = run_cointoss(["migrate"], urls(replica, new_redis))
        assert result.returncode == 75, result.stderr
        assert one_line(result.stderr).startswith("cointoss: MIGRATION_OLD_REDIS_URL: OLD Redis")

    def test_a_refused_write_never_echoes_the_job(self, replica: RedisServer) -> None:
        """redis-py repeats a failed pipeline command, job included; the diagnosis does not."""
        import redis

        from supervisor.migration.mover import failure

        pipe = replica.client().pipeline(transaction=True)
        pipe.zadd("schedule", {job("x"): 1})
        with pytest.raises(redis.RedisError) as caught:
            pipe.execute()
        assert MARKER in str(caught.value)  # what the old error line repeated
        error = failure("NEW", replica.url, caught.value)
        assert error.exit_code == 75
        assert MARKER not in str(error)


class TestRefusedUrlOptions:
    @pytest.mark.parametrize("option", ["ssl_cert_reqs=bogus", "protocol=4"])
    @pytest.mark.parametrize("role", ["OLD", "NEW"])
    @pytest.mark.parametrize("command", ["toss", "status", "migrate"])
    def test_an_option_redis_py_refuses_is_78_naming_it(
        self,
        old_redis: RedisServer,
        new_redis: RedisServer,
        option: str,
        role: str,
        command: str,
    ) -> None:
        scheme = "rediss" if option.startswith("ssl") else "redis"
        server = old_redis if role == "OLD" else new_redis
        bad = f"{scheme}://:{SECRET}@127.0.0.1:{server.port}/0?{option}"
        queue_jobs(old_redis.client(), 1)
        env = urls(bad, new_redis) if role == "OLD" else urls(old_redis, bad)
        result = run_cointoss([command], env)
        assert result.returncode == 78, result.stderr
        line = one_line(result.stderr)
        assert line.startswith(f"cointoss: MIGRATION_{role}_REDIS_URL: ")
        assert re.search(rf"\b{option.split('=')[0]}\b", line)
        assert_clean(result.stdout, result.stderr)


class TestServerThatNeverAnswers:
    """A port that accepts connections and never replies (a hung server, a TLS URL pointed at a
    plain port): `status` and `migrate` give up with 69 after their command timeout (10 s),
    not after a minute, and name the side."""

    @pytest.mark.slow  # 10 s of waiting each, and no server build involved: not in the matrix
    @pytest.mark.parametrize("command", [["status"], ["migrate"]])
    def test_a_silent_server_is_69_within_the_command_timeout(
        self, command: list[str], old_redis: RedisServer
    ) -> None:
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            port = silent.getsockname()[1]
            result = run_cointoss(
                command,
                {
                    "MIGRATION_OLD_REDIS_URL": old_redis.url,
                    "MIGRATION_NEW_REDIS_URL": f"redis://127.0.0.1:{port}/0",
                },
                timeout=40,  # the old 60 s command timeout ran past this
            )
        assert result.returncode == 69, result.stderr
        assert result.stderr.startswith(f"cointoss: NEW Redis at 127.0.0.1:{port}")
        assert len(result.stderr.splitlines()) == 1
