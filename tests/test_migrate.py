"""`cointoss migrate` as an operator runs it: real subprocesses, exit codes, stdout and events."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time

import pytest

from supervisor import constants as k
from supervisor.demo.embedded_redis import RedisServer
from tests.conftest import child_env, cointoss_argv, run_cointoss, start_cointoss


def urls(old: RedisServer | str, new: RedisServer | str) -> dict[str, str]:
    return {
        "MIGRATION_OLD_REDIS_URL": old if isinstance(old, str) else old.url,
        "MIGRATION_NEW_REDIS_URL": new if isinstance(new, str) else new.url,
    }


def events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


class TestMigrateCommand:
    def test_moves_and_prints_a_summary_per_key(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """Exit 0, one line per key and the total on stdout, everything on NEW."""
        old = old_redis.client()
        old.zadd("schedule", {f"s{i}": i for i in range(1200)})
        old.zadd("retry", {"r": 1})
        result = run_cointoss(["migrate"], urls(old_redis, new_redis))
        assert result.returncode == 0, result.stderr
        assert "moved 1,201 item(s) from OLD to NEW" in result.stdout
        assert "schedule" in result.stdout and "1,200" in result.stdout
        assert new_redis.client().zcard("schedule") == 1200

    def test_json_summary_and_events_for_log_pipelines(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """--json prints the counts; stderr (not a terminal) carries migrate_progress and migrate_done."""
        old_redis.client().zadd("schedule", {f"s{i}": i for i in range(50)})
        result = run_cointoss(["migrate", "--json", "--batch", "10"], urls(old_redis, new_redis))
        assert json.loads(result.stdout) == {
            "dry_run": False,
            "moved": {"schedule": 50},
            "total": 50,
            "replayed_batches": 0,
            "skipped": [],
        }
        names = [event["event"] for event in events(result.stderr)]
        assert "migrate_progress" in names
        assert names[-1] == "migrate_done"
        done = events(result.stderr)[-1]
        assert done["moved"] == {"schedule": 50}
        assert done["total"] == 50

    def test_a_terminal_gets_a_progress_bar_instead_of_events(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """With stderr on a tty, a rich bar is drawn and no migrate_progress event is logged."""
        old_redis.client().zadd("schedule", {f"s{i}": i for i in range(3000)})
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            cointoss_argv("migrate", "--batch", "5"),
            env=child_env(urls(old_redis, new_redis)),
            stdout=subprocess.PIPE,
            stderr=follower,
            stdin=subprocess.DEVNULL,
        )
        os.close(follower)
        seen = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        proc.wait(30)
        os.close(leader)
        assert proc.returncode == 0
        assert "━" in seen.decode("utf-8", "replace")
        assert b"migrate_progress" not in seen

    def test_dry_run_reports_and_changes_nothing(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """--dry-run says what would move and leaves OLD as it was."""
        old_redis.client().zadd("retry", {"r1": 1, "r2": 2})
        result = run_cointoss(["migrate", "--dry-run"], urls(old_redis, new_redis))
        assert result.returncode == 0
        assert "would move 2 item(s)" in result.stdout
        assert old_redis.client().zcard("retry") == 2
        assert new_redis.client().dbsize() == 0

    def test_new_unreachable_exits_69_and_claims_nothing(
        self, old_redis: RedisServer, redis_factory: type[RedisServer]
    ) -> None:
        """NEW down: one line naming NEW, exit 69, no journal and nothing taken from OLD."""
        gone = redis_factory().start()
        url = gone.url
        gone.stop()
        old_redis.client().zadd("schedule", {"job": 1})
        result = run_cointoss(["migrate"], urls(old_redis, url))
        assert result.returncode == 69
        assert result.stderr.strip().splitlines()[-1].startswith("cointoss: NEW Redis at 127.0.0.1")
        assert old_redis.client().zcard("schedule") == 1
        assert not list(old_redis.client().scan_iter(match=k.MIGRATE_JOURNAL_PREFIX + "*"))

    def test_wrong_password_exits_78_without_showing_it(
        self, old_redis: RedisServer, redis_factory: type[RedisServer]
    ) -> None:
        """A bad password is a clear 78 (configuration) and the secret never appears in any output."""
        secret = "correct-horse-93571"
        guarded = redis_factory(password=secret).start()
        wrong = guarded.url.replace(secret, "wrong-battery-77123")
        result = run_cointoss(["migrate"], urls(old_redis, wrong))
        assert result.returncode == 78
        assert "MIGRATION_NEW_REDIS_URL" in result.stderr and "WRONGPASS" in result.stderr
        output = result.stdout + result.stderr
        assert "wrong-battery-77123" not in output
        assert secret not in output

    def test_same_server_and_database_is_refused_with_78(self, old_redis: RedisServer) -> None:
        """OLD and NEW spelled differently but the same database: refused before any claim."""
        old_redis.client().zadd("schedule", {"job": 1})
        aliased = old_redis.url.replace("127.0.0.1", "localhost")
        result = run_cointoss(["migrate"], urls(old_redis, aliased))
        assert result.returncode == 78
        assert "same Redis server and database" in result.stderr
        assert old_redis.client().zcard("schedule") == 1

    @pytest.mark.parametrize(
        "args",
        [
            ["--batch", "0"],
            ["--batch", "many"],
            ["--only", "schedule,bogus"],
            ["--due-within", "soon"],
            ["--wait-replicas", "-1"],
        ],
    )
    def test_bad_options_exit_64(
        self, old_redis: RedisServer, new_redis: RedisServer, args: list[str]
    ) -> None:
        """Each bad option is one `cointoss:` line and exit 64 (EX_USAGE)."""
        result = run_cointoss(["migrate", *args], urls(old_redis, new_redis))
        assert result.returncode == 64
        assert result.stderr.startswith("cointoss: ")
        assert "Traceback" not in result.stderr

    def test_a_wrong_type_key_exits_65_after_moving_the_rest(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """`schedule` holding a string: left alone, `retry` still moves, exit 65 (EX_DATAERR)."""
        old = old_redis.client()
        old.set("schedule", "junk")
        old.zadd("retry", {"r": 1})
        result = run_cointoss(["migrate"], urls(old_redis, new_redis))
        assert result.returncode == 65
        assert "left alone, holding another type than Sidekiq's: schedule" in result.stderr
        assert new_redis.client().zcard("retry") == 1
        assert old.get("schedule") == b"junk"

    def test_old_url_is_required(self, new_redis: RedisServer) -> None:
        """At weight 1 OLD may be unset for exec, but migrate needs it: exit 78 naming the variable."""
        env = {"MIGRATION_NEW_REDIS_URL": new_redis.url, "MIGRATION_NEW_WEIGHT": "1"}
        result = run_cointoss(["migrate"], env)
        assert result.returncode == 78
        assert "MIGRATION_OLD_REDIS_URL" in result.stderr

    def test_an_unreadable_queue_layout_is_refused(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """MIGRATION_QUEUE_LAYOUT=none means cointoss cannot read the keys: 78, nothing moved."""
        old_redis.client().zadd("schedule", {"job": 1})
        env = {**urls(old_redis, new_redis), "MIGRATION_QUEUE_LAYOUT": "none"}
        for command in ("migrate", "status"):
            result = run_cointoss([command], env)
            assert result.returncode == 78
            assert "MIGRATION_QUEUE_LAYOUT" in result.stderr
        assert old_redis.client().zcard("schedule") == 1

    def test_follow_keeps_moving_what_old_workers_add(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """--follow picks up retries that appear after it started, then ends once OLD stays empty."""
        old = old_redis.client()
        old.zadd("retry", {"first": 1})
        proc = start_cointoss(["migrate", "--follow", "--json"], urls(old_redis, new_redis))
        deadline = time.monotonic() + 30
        while new_redis.client().zcard("retry") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        old.zadd("retry", {"late": 2})
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert json.loads(out)["total"] == 2
        assert set(new_redis.client().zrange("retry", 0, -1)) == {b"first", b"late"}
