"""How fast `cointoss migrate` moves scheduled jobs, against the naive per-member script.

Same two redis-servers, one run each: 100,000 job-shaped members (~200 bytes of JSON) in OLD's
`schedule`, moved by the real `cointoss migrate` (a subprocess; the rate comes from its
`migrate_done` event, so interpreter start-up is not counted) and by the naive script (ZSCAN,
then ZADD on NEW and ZREM on OLD, one call each). Then the mover's peak RSS at 100,000 and
1,000,000 members (the child's ru_maxrss, from wait4).

    python benchmarks/migrate_throughput.py [--members 100000] [--big 1000000] [--batch N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from supervisor.demo.embedded_redis import RedisServer  # noqa: E402

TARGET_RATIO = 40.0
TARGET_RSS_GROWTH_MIB = 20.0


def job(i: int, now: float) -> bytes:
    """A Sidekiq 6 `schedule` member of about 200 bytes."""
    body = {
        "retry": True,
        "queue": "default",
        "class": "ReportMailer",
        "args": [i, f"user-{i:08d}@example.com", "weekly-digest", {"locale": "en"}],
        "jid": f"{i:024x}",
        "created_at": now - i / 1000,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def seed(client: redis.Redis, count: int) -> int:
    """Fills `schedule`; returns the average member size in bytes."""
    now = time.time()
    size = 0
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        member = job(i, now)
        size += len(member)
        pipe.zadd("schedule", {member: now + 3600 + i * 0.37})
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    return size // max(count, 1)


def naive_move(old: redis.Redis, new: redis.Redis) -> float:
    """The per-member script people write first. Returns seconds."""
    started = time.perf_counter()
    while old.zcard("schedule"):
        for member, score in old.zscan_iter("schedule", count=1000, score_cast_func=bytes):
            new.zadd("schedule", {member: score})
            old.zrem("schedule", member)
    return time.perf_counter() - started


@dataclass(frozen=True)
class MoverRun:
    seconds: float  # from the mover's own migrate_done event: interpreter start-up not counted
    moved: int
    cpu_s: dict[str, float]  # CPU spent by OLD's and NEW's redis-server and by the mover process


def cointoss_move(old: RedisServer, new: RedisServer, batch: int | None) -> MoverRun:
    """Runs the real command and measures where the CPU went (the two servers and the mover)."""
    argv = [sys.executable, "-m", "supervisor", "migrate", "--json"]
    if batch:
        argv += ["--batch", str(batch)]
    servers_before = [server_cpu(old), server_cpu(new)]
    mover_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(argv, env=mover_env(old.url, new.url), capture_output=True, text=True)
    mover_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"cointoss migrate failed: {result.stderr[-500:]}")
    done = [json.loads(line) for line in result.stderr.splitlines() if '"migrate_done"' in line][-1]
    cpu = {
        "OLD": server_cpu(old) - servers_before[0],
        "NEW": server_cpu(new) - servers_before[1],
        "mover": (mover_after.ru_utime + mover_after.ru_stime)
        - (mover_before.ru_utime + mover_before.ru_stime),
    }
    return MoverRun(float(done["elapsed_s"]), int(json.loads(result.stdout)["total"]), cpu)


def server_cpu(server: RedisServer) -> float:
    info = server.client().info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def mover_env(old_url: str, new_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "MIGRATION_OLD_REDIS_URL": old_url,
        "MIGRATION_NEW_REDIS_URL": new_url,
        "MIGRATION_LOG_FORMAT": "json",
        "PYTHONPATH": str(ROOT),
    }


def peak_rss(old: RedisServer, new: RedisServer, members: int, batch: int | None) -> float:
    """Peak RSS of one mover process over `members` members, measured in a fresh child."""
    for client in (old.client(), new.client()):
        client.flushall()
    seed(old.client(), members)
    child = subprocess.Popen(
        [sys.executable, __file__, "--rss-child", old.url, new.url, str(batch or 0)],
        stdout=subprocess.PIPE,
    )
    out, _ = child.communicate()
    return float(out)


def rss_child(old_url: str, new_url: str, batch: int) -> None:
    """Runs the command and prints its ru_maxrss: this process has no other child to blur it."""
    argv = [sys.executable, "-m", "supervisor", "migrate"] + (
        ["--batch", str(batch)] if batch else []
    )
    proc = subprocess.Popen(
        argv, env=mover_env(old_url, new_url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"cointoss migrate exited with status {status}")
    print(usage.ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=0, help="cointoss --batch (0: its default)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="mover runs (each on a fresh seed); the median counts"
    )
    parser.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        old_url, new_url, batch = args.rss_child
        rss_child(old_url, new_url, int(batch))
        return

    with RedisServer() as old, RedisServer() as new:
        old_client, new_client = old.client(), new.client()
        size = seed(old_client, args.members)
        print(f"members: {args.members:,} of ~{size} bytes in OLD's schedule")

        # The mover takes well under a second on two shared cores, where the two redis-servers
        # and the mover compete for CPU: one run is mostly noise, so take the median of several.
        # A run with nothing to move: the interpreter's start-up CPU, subtracted below.
        old_client.rename("schedule", "schedule.aside")
        idle = cointoss_move(old, new, args.batch or None)
        old_client.rename("schedule.aside", "schedule")
        runs = []
        for round_ in range(args.rounds):
            if round_:
                new_client.flushall()
                seed(old_client, args.members)
            run = cointoss_move(old, new, args.batch or None)
            assert run.moved == args.members and old_client.zcard("schedule") == 0
            runs.append(run)
        rates = [run.moved / run.seconds for run in runs]
        mover_rate = statistics.median(rates)
        print(
            f"cointoss migrate: median {mover_rate:,.0f} jobs/s over {args.rounds} runs"
            f" (min {min(rates):,.0f}, max {max(rates):,.0f})"
        )
        # The mover is CPU-bound: this is where a faster mover would have to save.
        cpu = {
            where: statistics.median(run.cpu_s[where] - idle.cpu_s[where] for run in runs)
            for where in idle.cpu_s
        }
        print(
            "  CPU spent moving (median, start-up subtracted): "
            + ", ".join(f"{where} {seconds:.3f} s" for where, seconds in cpu.items())
            + f"; {os.cpu_count()} CPUs"
        )

        new_client.flushall()
        seed(old_client, args.members)
        naive_seconds = naive_move(old_client, new_client)
        assert new_client.zcard("schedule") == args.members
        naive_rate = args.members / naive_seconds
        print(
            f"naive ZSCAN+ZADD+ZREM: {args.members:,} in {naive_seconds:.2f} s = {naive_rate:,.0f} jobs/s"
        )
        ratio = mover_rate / naive_rate
        print(f"ratio: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x)")

        small = peak_rss(old, new, args.members, args.batch or None)
        large = peak_rss(old, new, args.big, args.batch or None)
        print(
            f"mover peak RSS: {small:.1f} MiB at {args.members:,}, {large:.1f} MiB at {args.big:,}"
        )
        growth = large - small
        print(f"RSS growth: {growth:+.1f} MiB (target <= {TARGET_RSS_GROWTH_MIB:.0f} MiB)")


if __name__ == "__main__":
    main()
