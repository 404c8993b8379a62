"""A stand-in worker whose tree outlives its first process: it logs every start, signal and end.

Usage: treeworker.py LOG [--term-delay S] [--grandchild] [--launch] [--exit-after S]
                         [--exit-code N] [--allocate-mib N]
  Appends one JSON line per happening to LOG: {"role", "what": start|signal|exit, "pid", "ppid",
  "pgid", "t", ...}. A start also lists `alive`: the pids that earlier lives (other process
  groups) logged and that still run, which a supervisor must have let end before a new life.
  worker (default): on TERM/INT/QUIT it finishes after --term-delay seconds with --exit-code.
  --launch: a launcher that forks the worker and waits for it, with default signal handling
    (like `bundle exec` and friends): it dies at once on TERM, leaving the worker behind.
  --grandchild: the worker first forks a grandchild that ignores TERM (recorded all the same)
    and only ever ends by KILL.
  --exit-after S: the worker exits by itself (a crash with --exit-code) after S seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
RECORDED = (*STOPS, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def record(log: str, role: str, what: str, **fields: object) -> None:
    line = {
        "role": role,
        "what": what,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
        "t": time.time(),
        **fields,
    }
    with open(log, "a") as handle:
        handle.write(json.dumps(line) + "\n")


def alive(pid: int) -> bool:
    """Running or stopped, not a zombie (a zombie has ended; only its parent's wait is missing)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


def earlier_lives(log: str) -> list[int]:
    """Pids logged by other process groups than ours, i.e. by earlier lives."""
    try:
        with open(log) as handle:
            lines = [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []
    return sorted({line["pid"] for line in lines if line["pgid"] != os.getpgid(0)})


def grandchild(log: str) -> None:
    def on_signal(signum: int, _frame: object) -> None:
        record(log, "grandchild", "signal", signal=signal.Signals(signum).name)

    for signum in RECORDED:
        signal.signal(signum, on_signal)  # TERM included: recorded, then ignored
    record(log, "grandchild", "start")
    while True:
        time.sleep(3600)


def worker(args: argparse.Namespace) -> int:
    if args.grandchild and os.fork() == 0:
        grandchild(args.log)
    stop_at: list[float] = []

    def on_signal(signum: int, _frame: object) -> None:
        record(args.log, "worker", "signal", signal=signal.Signals(signum).name)
        if signum in STOPS and not stop_at:
            stop_at.append(time.monotonic() + args.term_delay)

    for signum in RECORDED:
        signal.signal(signum, on_signal)
    ballast = bytearray(args.allocate_mib * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1  # touch every page so it counts in RSS
    started = time.monotonic()
    while True:
        now = time.monotonic()
        if stop_at and now >= stop_at[0]:
            break
        if args.exit_after is not None and now - started >= args.exit_after:
            break
        time.sleep(0.02)
    record(args.log, "worker", "exit", code=args.exit_code)
    return int(args.exit_code)


def launcher(argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, __file__, *argv])
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) % 256


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("--term-delay", type=float, default=0.0)
    parser.add_argument("--grandchild", action="store_true")
    parser.add_argument("--launch", action="store_true")
    parser.add_argument("--exit-after", type=float)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--allocate-mib", type=int, default=0)
    args = parser.parse_args()
    role = "launcher" if args.launch else "worker"
    earlier = earlier_lives(args.log)
    record(
        args.log,
        role,
        "start",
        alive=[pid for pid in earlier if alive(pid)],
        choice=os.environ.get("MIGRATION_CHOICE"),
    )
    if args.launch:
        return launcher([a for a in sys.argv[1:] if a != "--launch"])
    return worker(args)


if __name__ == "__main__":
    sys.exit(main())
