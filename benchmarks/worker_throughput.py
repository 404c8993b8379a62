"""Jobs/s of worker_app and of the real Sidekiq 6.4.1 draining the same NoopJobs, in one run.

Both workers run with the same concurrency against the same fresh redis-server. Each worker
boots first (it is in `processes`), then all jobs appear at once (one LPUSH), so boot time is not
measured; the clock stops when the queue and worker_app's in-flight lists are empty.
worker_app runs with reliable fetch (its only mode). Usage:

    python benchmarks/worker_throughput.py [--jobs 20000] [--concurrency 10] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from supervisor.demo.embedded_redis import RedisServer  # noqa: E402
from worker_app.client import enqueue  # noqa: E402
from worker_app.jobs import build_job  # noqa: E402

RUBY_JOBS = REPO / "tests" / "ruby" / "jobs.rb"
BOOT_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 600.0


def worker_argv(kind: str, concurrency: int) -> list[str]:
    if kind == "sidekiq":
        sidekiq = shutil.which("sidekiq") or "/usr/bin/sidekiq"
        return [sidekiq, "-r", str(RUBY_JOBS), "-q", "default", "-c", str(concurrency), "-t", "25"]
    return [sys.executable, "-m", "worker_app"]


def drain_rate(server: RedisServer, kind: str, jobs: int, concurrency: int) -> float:
    client = server.client()
    client.flushall()
    env = dict(
        os.environ,
        REDIS_URL=server.url,
        WORKER_CONCURRENCY=str(concurrency),
        WORKER_QUEUES="default",
        PYTHONPATH=str(REPO),
    )
    proc = subprocess.Popen(
        worker_argv(kind, concurrency),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: client.scard("processes") > 0, BOOT_TIMEOUT_S, f"{kind} to boot")
        pipe = client.pipeline(transaction=False)
        enqueue(pipe, "default", [build_job("NoopJob", [i]) for i in range(jobs)])
        started = time.perf_counter()
        pipe.execute()  # SADD + one LPUSH: every job appears at once
        wait_for(lambda: drained(client), DRAIN_TIMEOUT_S, f"{kind} to drain")
        return jobs / (time.perf_counter() - started)
    finally:
        proc.terminate()
        proc.wait(60)


def drained(client: redis.Redis) -> bool:
    if client.llen("queue:default"):
        return False
    return not any(client.llen(key) for key in client.scan_iter(match="queue:sq|*"))


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.002)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"{args.jobs} NoopJobs, concurrency {args.concurrency}, {args.rounds} round(s)")
    best: dict[str, float] = {}
    with RedisServer() as server:
        for round_no in range(1, args.rounds + 1):
            for kind in ("sidekiq", "worker_app"):
                rate = drain_rate(server, kind, args.jobs, args.concurrency)
                best[kind] = max(best.get(kind, 0.0), rate)
                print(f"round {round_no}  {kind:<10} {rate:10.0f} jobs/s")
    ratio = best["worker_app"] / best["sidekiq"]
    print(f"best: sidekiq {best['sidekiq']:.0f} jobs/s, worker_app {best['worker_app']:.0f} jobs/s")
    print(f"ratio worker_app/sidekiq = {ratio:.2f}x (target >= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
