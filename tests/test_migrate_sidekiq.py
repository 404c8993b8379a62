"""Interop: the mover races the real Sidekiq 6.4.1 poller on OLD while another Sidekiq consumes NEW."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from supervisor.demo.embedded_redis import RedisServer
from tests.conftest import child_env, cointoss_argv

pytestmark = pytest.mark.interop

LEDGER = "worker_app:processed"
JOBS_RB = """
require "sidekiq"
Sidekiq.configure_server do |config|
  config.options[:poll_interval_average] = 0.2
end
class RecordJob
  include Sidekiq::Worker
  def perform(*_args)
    Sidekiq.redis { |r| r.hincrby("worker_app:processed", jid, 1) }
  end
end
"""


def sidekiq_binary() -> str:
    found = shutil.which("sidekiq") or (
        "/usr/bin/sidekiq" if Path("/usr/bin/sidekiq").exists() else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("sidekiq (apt ruby-sidekiq) is required under CI=true")
        pytest.skip("sidekiq (apt ruby-sidekiq) is not installed")
    return found


class Sidekiq:
    """One real Sidekiq process on one Redis; output goes to a file (a full pipe would stall it)."""

    def __init__(self, url: str, jobs_rb: Path, log: Path) -> None:
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sidekiq_binary(), "-r", str(jobs_rb), "-c", "5", "-q", "default"],
            env={**os.environ, "REDIS_URL": url},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def sidekiqs(tmp_path: Path) -> Iterator[list[Sidekiq]]:
    started: list[Sidekiq] = []
    yield started
    for process in started:
        process.stop()


def seed_jobs(client: redis.Redis, count: int) -> set[str]:
    """RecordJobs in `schedule` and `retry`, due from two seconds ago to four seconds ahead."""
    now = time.time()
    jids = set()
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        jid = f"{i:024x}"
        job = {
            "retry": True,
            "queue": "default",
            "class": "RecordJob",
            "args": [i],
            "jid": jid,
            "created_at": now,
        }
        key = "schedule"
        if i % 2:
            key = "retry"
            job |= {
                "error_message": "boom",
                "error_class": "RuntimeError",
                "failed_at": now,
                "retry_count": 0,
            }
        pipe.zadd(key, {json.dumps(job, separators=(",", ":")): now - 2 + 6 * i / count})
        jids.add(jid)
    pipe.execute()
    return jids


def ledger(client: redis.Redis) -> dict[str, int]:
    return {jid.decode(): int(n) for jid, n in client.hgetall(LEDGER).items()}


def wait_for(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class TestMigrateWithLiveSidekiq:
    def test_every_job_runs_exactly_once_across_old_and_new(
        self,
        old_redis: RedisServer,
        new_redis: RedisServer,
        sidekiqs: list[Sidekiq],
        tmp_path: Path,
    ) -> None:
        """Sidekiq polls OLD, another Sidekiq consumes NEW, migrate moves in between: one run per job."""
        jobs_rb = tmp_path / "jobs.rb"
        jobs_rb.write_text(JOBS_RB)
        old, new = old_redis.client(), new_redis.client()
        jids = seed_jobs(old, 3000)
        sidekiqs.append(Sidekiq(old_redis.url, jobs_rb, tmp_path / "old.log"))
        sidekiqs.append(Sidekiq(new_redis.url, jobs_rb, tmp_path / "new.log"))
        wait_for(lambda: old.hlen(LEDGER) > 0, 60, "Sidekiq on OLD to start running jobs")

        env = child_env(
            {"MIGRATION_OLD_REDIS_URL": old_redis.url, "MIGRATION_NEW_REDIS_URL": new_redis.url}
        )
        result = subprocess.run(
            cointoss_argv("migrate", "--batch", "10", "--follow", "--json"),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        moved = json.loads(result.stdout)["total"]

        wait_for(lambda: old.hlen(LEDGER) + new.hlen(LEDGER) >= len(jids), 90, "every job to run")
        time.sleep(1.0)  # a duplicate would show up late, from a poller or a retry
        ran_old, ran_new = ledger(old), ledger(new)
        assert set(ran_old) | set(ran_new) == jids
        assert set(ran_old) & set(ran_new) == set()
        assert set(ran_old.values()) | set(ran_new.values()) == {1}
        assert len(ran_new) == moved > 0
        assert ran_old, "Sidekiq on OLD ran nothing: the race was not exercised"
        for client in (old, new):
            assert (
                client.zcard("schedule")
                == client.zcard("retry")
                == client.llen("queue:default")
                == 0
            )
