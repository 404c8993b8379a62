"""The README's Sidekiq initializer, run by the real Sidekiq 6.4.1 under `cointoss exec`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from supervisor.demo.embedded_redis import RedisServer
from tests.conftest import REPO_ROOT, child_env, cointoss_argv

pytestmark = pytest.mark.interop

JOBS = """
class SpawnJob
  include Sidekiq::Worker
  def perform(n)
    n.times { ChildJob.perform_async }
  end
end

class ChildJob
  include Sidekiq::Worker
  def perform; end
end
"""


def readme_initializer() -> str:
    """The ```ruby block of the README's "Sidekiq setup" section, exactly as users copy it."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Sidekiq setup (Ruby workers)", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```ruby\n(.*?)```", section, re.S)
    assert match, "the Sidekiq setup section has no ruby block"
    return match.group(1)


@pytest.fixture
def sidekiq() -> str:
    found = shutil.which("sidekiq")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ruby-sidekiq is not installed; CI must run the interop tests")
        pytest.skip("ruby-sidekiq is not installed (apt-get install ruby-sidekiq)")
    return found


def test_jobs_pushed_by_a_worker_on_old_land_on_new(
    old_redis: RedisServer, new_redis: RedisServer, sidekiq: str, tmp_path: Path
) -> None:
    """A Sidekiq process that cointoss sent to OLD consumes OLD, and perform_async inside its
    jobs pushes to NEW (REDIS_PRODUCER_URL), so OLD can drain."""
    app = tmp_path / "app.rb"
    app.write_text('require "sidekiq"\n' + readme_initializer() + JOBS)
    now = time.time()
    job = {"class": "SpawnJob", "args": [3], "queue": "default", "jid": "a" * 24, "retry": False}
    old_redis.client().lpush(
        "queue:default", json.dumps({**job, "created_at": now, "enqueued_at": now})
    )
    old_redis.client().sadd("queues", "default")
    env = child_env(
        {
            "MIGRATION_NEW_REDIS_URL": new_redis.url,
            "MIGRATION_OLD_REDIS_URL": old_redis.url,
            "MIGRATION_NEW_WEIGHT": "0",
        }
    )
    proc = subprocess.Popen(
        cointoss_argv("exec", "--", sidekiq, "-r", str(app), "-c", "1", "-q", "default"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while new_redis.client().llen("queue:default") < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, "sidekiq exited early"
            time.sleep(0.1)
        children = [json.loads(item) for item in new_redis.client().lrange("queue:default", 0, -1)]
        assert [child["class"] for child in children] == ["ChildJob"] * 3
        assert old_redis.client().llen("queue:default") == 0
    finally:
        proc.send_signal(signal.SIGTERM)  # the PID is Sidekiq's own: cointoss exec'd into it
        proc.wait(timeout=60)
    assert proc.returncode == 0
