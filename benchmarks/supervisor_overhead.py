"""What `cointoss supervise` costs next to tini: RSS, idle CPU, and signal-forward latency.

Runs, in one go and on the same idle child: tini (`tini -s`, the Debian package), `cointoss
supervise` with its worker on NEW (no Redis involved), and `cointoss supervise` with its worker on
OLD (drain watch on two embedded Redis servers, default 30 s interval). The idle window is shared:
every wrapper is measured over the same seconds. Latency is the time from kill(wrapper, USR1) to
the child's handler writing a byte into a pipe, compared with signalling the child directly.

    python benchmarks/supervisor_overhead.py [--idle-seconds 60] [--signals 1000]

Targets (issue 5): RSS <= 50 MiB, idle CPU <= 0.5 % of a core, p99 forward latency <= 20 ms.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from supervisor.demo.embedded_redis import RedisServer  # noqa: E402

MIB = 1024 * 1024
ANSWER_TIMEOUT_S = 5.0
# sigwaitinfo, not a handler + pause(): a signal landing just before pause() would hang it
CHILD = r"""
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.write(1, b"r")
while True:
    signal.sigwaitinfo({signal.SIGUSR1})
    os.write(1, b"x")
"""
TARGET_RSS_MIB, TARGET_CPU_PERCENT, TARGET_P99_MS = 50.0, 0.5, 20.0


@dataclass
class Wrapped:
    """One wrapper process around the idle child, with the pipe the child answers on."""

    label: str
    process: subprocess.Popen[bytes]
    child_pid: int = 0
    rss_mib: float = 0.0
    cpu_percent: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    direct_ms: list[float] = field(default_factory=list)

    @property
    def psutil(self) -> psutil.Process:
        return psutil.Process(self.process.pid)


def start(label: str, argv: list[str], env: dict[str, str]) -> Wrapped:
    process = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    if process.stdout.read(1) != b"r":
        raise SystemExit(f"{label}: the child did not start")
    wrapped = Wrapped(label, process)
    wrapped.child_pid = wrapped.psutil.children()[0].pid
    return wrapped


def cointoss_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_")}
    env["PYTHONPATH"] = str(REPO)
    env["MIGRATION_LOG_FORMAT"] = "json"
    env.update(extra)
    return env


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure_latency(wrapped: Wrapped, count: int, target: int) -> list[float]:
    """kill(target, USR1), then block until the child's byte arrives; one signal in flight at a time."""
    assert wrapped.process.stdout is not None
    fd = wrapped.process.stdout.fileno()
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        os.kill(target, signal.SIGUSR1)
        ready, _, _ = select.select([fd], [], [], ANSWER_TIMEOUT_S)
        if not ready:
            raise SystemExit(
                f"{wrapped.label}: no answer within {ANSWER_TIMEOUT_S} s (signal lost)"
            )
        if os.read(fd, 1) != b"x":
            raise SystemExit(f"{wrapped.label}: lost the child")
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--signals", type=int, default=1000)
    args = parser.parse_args()
    tini = shutil.which("tini") or "/usr/bin/tini"
    child = [sys.executable, "-c", CHILD]
    cointoss = [sys.executable, "-m", "supervisor", "supervise", "--"]
    with RedisServer() as old, RedisServer() as new:
        old.client().lpush("queue:default", "{}")  # a backlog keeps the worker on OLD
        on_new = cointoss_env({"MIGRATION_NEW_REDIS_URL": new.url, "MIGRATION_NEW_WEIGHT": "1"})
        on_old = cointoss_env(
            {
                "MIGRATION_NEW_REDIS_URL": new.url,
                "MIGRATION_OLD_REDIS_URL": old.url,
                "MIGRATION_NEW_WEIGHT": "0.000001",
            }
        )
        runs = [
            start("tini -s (baseline)", [tini, "-s", "--", *child], dict(os.environ)),
            start("cointoss supervise, worker on NEW", [*cointoss, *child], on_new),
            start("cointoss supervise, worker on OLD (drain watch)", [*cointoss, *child], on_old),
        ]
        try:
            report(runs, args.idle_seconds, args.signals)
        finally:
            for wrapped in runs:
                wrapped.process.terminate()
                wrapped.process.wait(30)
    return 0


def report(runs: list[Wrapped], idle_s: float, count: int) -> None:
    time.sleep(1.0)  # let start-up settle before the idle window
    before = {w.label: w.psutil.cpu_times() for w in runs}
    print(f"idle window: {idle_s:.0f} s, all wrappers at once ...", flush=True)
    time.sleep(idle_s)
    for wrapped in runs:
        after, start_times = wrapped.psutil.cpu_times(), before[wrapped.label]
        used = (after.user - start_times.user) + (after.system - start_times.system)
        wrapped.cpu_percent = 100 * used / idle_s
        wrapped.rss_mib = wrapped.psutil.memory_info().rss / MIB
    for wrapped in runs:
        print(f"{count} signals through {wrapped.label} ...", flush=True)
        wrapped.direct_ms = measure_latency(wrapped, count, wrapped.child_pid)
        wrapped.latencies_ms = measure_latency(wrapped, count, wrapped.process.pid)
        wrapped.rss_mib = max(wrapped.rss_mib, wrapped.psutil.memory_info().rss / MIB)
    base = runs[0]
    print()
    header = f"{'wrapper':<48} {'RSS MiB':>8} {'idle CPU %':>10} {'p50 ms':>7} {'p99 ms':>7} {'direct p99':>10}"
    print(header)
    print("-" * len(header))
    for w in runs:
        print(
            f"{w.label:<48} {w.rss_mib:>8.1f} {w.cpu_percent:>10.3f} "
            f"{statistics.median(w.latencies_ms):>7.3f} {percentile(w.latencies_ms, 0.99):>7.3f} "
            f"{percentile(w.direct_ms, 0.99):>10.3f}"
        )
    print()
    for w in runs[1:]:
        p99 = percentile(w.latencies_ms, 0.99)
        print(
            f"{w.label}: RSS x{w.rss_mib / base.rss_mib:.1f} of tini, "
            f"p50 x{statistics.median(w.latencies_ms) / statistics.median(base.latencies_ms):.2f}, "
            f"p99 x{p99 / percentile(base.latencies_ms, 0.99):.2f}; targets: "
            f"RSS {'ok' if w.rss_mib <= TARGET_RSS_MIB else 'MISSED'} (<= {TARGET_RSS_MIB:.0f} MiB), "
            f"idle CPU {'ok' if w.cpu_percent <= TARGET_CPU_PERCENT else 'MISSED'} "
            f"(<= {TARGET_CPU_PERCENT} %), p99 {'ok' if p99 <= TARGET_P99_MS else 'MISSED'} "
            f"(<= {TARGET_P99_MS:.0f} ms)"
        )


if __name__ == "__main__":
    sys.exit(main())
