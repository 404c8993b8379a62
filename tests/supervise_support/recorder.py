"""A stand-in worker for supervise tests: records every signal it receives, one name per line.

Usage: recorder.py RECORD_FILE [--exit-code N] [--ignore-stop] [--starts FILE] [--allocate-mib N]
  TERM/INT/QUIT end it with --exit-code (default 0) unless --ignore-stop; every other catchable
  signal (real-time ones as SIGRTMIN+N) is only recorded. At start it appends its pid, process
  group, env choice and the SigBlk/SigIgn lines of /proc/self/status (as it found them) to the
  --starts file as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

STOPS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
# Every signal a Python handler can take safely: not KILL/STOP (uncatchable), not CHLD (it has no
# children), not the faults a handler would return into (SEGV, BUS, FPE, ILL). PIPE, XFSZ and XCPU
# are recorded so that a test can see they never arrive; the real-time range is ints, not names.
_NOT_RECORDED = {
    signal.SIGKILL,
    signal.SIGSTOP,
    signal.SIGCHLD,
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGILL,
}
RECORDED = [
    *(s for s in signal.Signals if s < signal.SIGRTMIN and s not in _NOT_RECORDED),
    *range(signal.SIGRTMIN, signal.SIGRTMAX + 1),
]


def signal_name(signum: int) -> str:
    """SIGTERM, SIGRTMIN, SIGRTMIN+1 ... SIGRTMAX."""
    if signal.SIGRTMIN < signum < signal.SIGRTMAX:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
    return signal.Signals(signum).name


def proc_status() -> dict[str, str]:
    with open("/proc/self/status") as handle:
        lines = [line.split(":", 1) for line in handle if line.startswith(("SigBlk", "SigIgn"))]
    return {key: value.strip() for key, value in lines}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("record")
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--ignore-stop", action="store_true")
    parser.add_argument("--starts")
    parser.add_argument("--allocate-mib", type=int, default=0)
    args = parser.parse_args()
    status = proc_status()  # before Python's own handlers change anything below
    ballast = bytearray(args.allocate_mib * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1  # touch every page so it counts in RSS

    def on_signal(signum: int, _frame: object) -> None:
        with open(args.record, "a") as handle:
            handle.write(signal_name(signum) + "\n")
        if signum in STOPS and not args.ignore_stop:
            sys.exit(args.exit_code)

    for signum in RECORDED:
        signal.signal(signum, on_signal)
    if args.starts:
        with open(args.starts, "a") as handle:
            start = {
                "pid": os.getpid(),
                "pgid": os.getpgid(0),
                "ppid": os.getppid(),
                "redis_url": os.environ.get("REDIS_URL"),
                "choice": os.environ.get("MIGRATION_CHOICE"),
                "producer_url": os.environ.get("REDIS_PRODUCER_URL"),
                "source_vars": sorted(n for n in os.environ if n.endswith("_REDIS_URL")),
                **status,
            }
            handle.write(json.dumps(start) + "\n")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
