"""Which signals the supervisor passes on, which ones mean "stop", and how a wait status becomes an exit code.

Pure data and arithmetic: the loop in `supervise.py` does the blocking, waiting and sending.
"""

from __future__ import annotations

import os
import signal

# Signals no process can catch, block or ignore.
UNCATCHABLE: frozenset[int] = frozenset({signal.SIGKILL, signal.SIGSTOP})

# Every signal whose disposition a process can set: the named standard ones, then the real-time
# range as Python reports it. `signal.SIGRTMIN` is glibc's run-time value, already above the two
# signals glibc keeps for itself (32 and 33: thread cancellation and setxid), which must never be
# touched; nothing below SIGRTMIN is taken from the real-time side.
CATCHABLE: tuple[int, ...] = (
    *(int(s) for s in signal.Signals if s < signal.SIGRTMIN and s not in UNCATCHABLE),
    *range(signal.SIGRTMIN, signal.SIGRTMAX + 1),
)

# Every catchable signal an operator, ECS or a terminal sends to a worker. SIGCHLD is ours
# (reaping); SIGKILL/SIGSTOP cannot be caught; synchronous faults (SEGV, BUS...) are our own.
FORWARDED: tuple[signal.Signals, ...] = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTSTP,  # Sidekiq: quiet (stop fetching)
    signal.SIGTTIN,  # Sidekiq: dump thread backtraces
    signal.SIGTTOU,
    signal.SIGWINCH,
    signal.SIGCONT,
)

# Asking the container to end: forward it, wait up to MIGRATION_STOP_TIMEOUT, then KILL.
# QUIT is included because it too asks for termination (with a core dump by default).
STOP_REQUESTS: frozenset[signal.Signals] = frozenset(
    {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
)

# What the main loop waits for; all of them stay blocked in the supervisor so that none of
# them ever runs a default action here (TSTP/TTIN/TTOU would stop us, TERM would kill us).
WAITED: frozenset[signal.Signals] = frozenset({*FORWARDED, signal.SIGCHLD})

# How the supervisor asks its child to finish when it decides to restart it.
GRACEFUL_STOP = signal.SIGTERM

SIGNAL_EXIT_BASE = 128


def exit_code(wait_status: int) -> int:
    """The shell's convention: the child's code, or 128+N when signal N ended it (never 0)."""
    code = os.waitstatus_to_exitcode(wait_status)
    return SIGNAL_EXIT_BASE - code if code < 0 else code


def ended_by_signal(wait_status: int) -> int | None:
    """The signal that ended the child (a plain int: it may be real-time), or None when it exited by itself."""
    if os.WIFSIGNALED(wait_status):
        return os.WTERMSIG(wait_status)
    return None


def name(signum: int) -> str:
    """`SIGTERM` rather than 15 in events; `SIGRTMIN+3` for a real-time signal between the two ends.

    `signal.Signals` names only SIGRTMIN and SIGRTMAX; the others are plain ints there.
    """
    if signal.SIGRTMIN < signum < signal.SIGRTMAX:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)
