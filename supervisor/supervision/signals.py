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
# touched; so nothing unnamed below SIGRTMIN is taken, even if `valid_signals()` listed it.
_STANDARD = [int(s) for s in signal.Signals if s < signal.SIGRTMIN]
_REAL_TIME = range(signal.SIGRTMIN, signal.SIGRTMAX + 1)
_VALID = signal.valid_signals()
CATCHABLE: tuple[int, ...] = tuple(
    s for s in (*_STANDARD, *_REAL_TIME) if s in _VALID and s not in UNCATCHABLE
)

# Catchable signals the supervisor keeps for itself, each for a reason:
NOT_FORWARDED: frozenset[int] = frozenset(
    {
        # Ours: it tells us to reap (the worker and any orphan). Waited for, never forwarded.
        signal.SIGCHLD,
        # Synchronous faults raised by the supervisor's own code (a bad access, a division, an
        # abort()...): they concern this process only. Blocking them would not help either: the
        # kernel kills a process that faults with the signal blocked.
        signal.SIGSEGV,
        signal.SIGBUS,
        signal.SIGFPE,
        signal.SIGILL,
        signal.SIGTRAP,
        signal.SIGSYS,
        signal.SIGABRT,
        # Raised by the supervisor's own writes (to a closed pipe or socket, past RLIMIT_FSIZE).
        # Python ignores both so that the write fails with EPIPE/EFBIG instead; blocked, they would
        # become pending and be forwarded, killing the worker for our own failed write. An
        # external `kill -PIPE` is therefore ignored too.
        signal.SIGPIPE,
        signal.SIGXFSZ,
        # The supervisor's own CPU limit (RLIMIT_CPU), not the worker's (which has its own).
        signal.SIGXCPU,
    }
)

# Everything else that can be caught goes to the worker: what an operator, ECS or a terminal
# sends (TERM, INT, QUIT, HUP, USR1, USR2, TSTP for Sidekiq's quiet, TTIN, TTOU, WINCH, CONT), and
# also ALRM, PWR, URG, IO, VTALRM, PROF, STKFLT and every real-time signal. A signal left out of
# this list would keep its default action in the supervisor: for most that is to terminate,
# killing the supervisor and leaving the worker (in its own process group) running orphaned.
FORWARDED: tuple[int, ...] = tuple(s for s in CATCHABLE if s not in NOT_FORWARDED)

# Asking the container to end: forward it, wait up to MIGRATION_STOP_TIMEOUT, then KILL.
# QUIT is included because it too asks for termination (with a core dump by default).
STOP_REQUESTS: frozenset[int] = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})

# What the main loop waits for; all of them stay blocked in the supervisor so that none of
# them ever runs a default action here (TSTP/TTIN/TTOU would stop us, TERM or ALRM would kill us).
WAITED: frozenset[int] = frozenset({*FORWARDED, signal.SIGCHLD})

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
