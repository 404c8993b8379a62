"""The pure policy behind `cointoss supervise`: restarts and backoff, drain confirmations, jitter, exit codes."""

from __future__ import annotations

import random
import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.settings import Settings
from supervisor.supervision.convergence import Confirmations, drained_decision, jitter_delay
from supervisor.supervision.restarts import (
    Finish,
    GiveUp,
    Restart,
    RestartPolicy,
    after_exit,
    backoff_delay,
)
from supervisor.supervision.signals import FORWARDED, STOP_REQUESTS, WAITED, exit_code, name

POLICY = RestartPolicy(max_restarts=5, window_s=300)


@pytest.mark.parametrize(
    ("history", "now", "code", "expected"),
    [
        ([], 10, 0, Finish()),
        ([1, 2, 3], 10, 0, Finish()),
        ([], 10, 3, Restart(1.0, 1)),
        ([9], 10, 3, Restart(2.0, 2)),
        ([7, 9], 10, 137, Restart(4.0, 3)),
        ([1, 2, 3], 10, 1, Restart(8.0, 4)),
        ([1, 2, 3, 4], 10, 1, Restart(16.0, 5)),
        ([1, 2, 3, 4, 5], 10, 3, GiveUp(3, 5)),
        ([1, 2, 3, 4, 5], 10, 137, GiveUp(137, 5)),
        # restarts older than the window no longer count, and the backoff starts over
        ([1, 2, 3, 4, 5], 303, 3, Restart(4.0, 3)),
        ([1, 2, 3, 4, 5], 400, 3, Restart(1.0, 1)),
        ([0], 300, 3, Restart(1.0, 1)),
        ([0.5], 300, 3, Restart(2.0, 2)),
    ],
)
def test_restart_policy_table(history, now, code, expected):
    """Exit 0 finishes; other ends restart with 1, 2, 4 ... s until MAX_RESTARTS within the window, then give up."""
    assert after_exit(POLICY, history, now, code) == expected


@pytest.mark.parametrize("code", [1, 3, 137, 143])
def test_max_restarts_zero_never_restarts(code):
    """MIGRATION_MAX_RESTARTS=0 hands every failure straight to the orchestrator."""
    assert after_exit(RestartPolicy(0, 300), [], 0, code) == GiveUp(code, 0)


def test_backoff_doubles_then_caps():
    """1, 2, 4, 8, 16, 32, then 32 for ever (the cap), and never overflows."""
    delays = [backoff_delay(POLICY, n) for n in (0, 1, 2, 3, 4, 5, 6, 50, 10**6)]
    assert delays == [1, 2, 4, 8, 16, 32, 32, 32, 32]


@given(
    history=st.lists(st.floats(0, 1000), max_size=20),
    now=st.floats(1000, 2000),
    code=st.integers(1, 255),
    max_restarts=st.integers(0, 10),
    window=st.floats(1, 2000),
)
def test_failures_never_finish_and_restarts_stay_within_budget(
    history, now, code, max_restarts, window
):
    """A failing child is never reported as success, and restarts never exceed the window's budget."""
    policy = RestartPolicy(max_restarts, window)
    outcome = after_exit(policy, history, now, code)
    recent = [t for t in history if now - t < window]
    if isinstance(outcome, Restart):
        assert len(recent) < max_restarts and 1 <= outcome.delay_s <= policy.max_delay_s
    else:
        assert outcome == GiveUp(code, len(recent)) and len(recent) >= max_restarts


@pytest.mark.parametrize(
    ("checks", "count", "confirmed"),
    [
        ([], 0, False),
        ([True, True], 2, False),
        ([True, True, True], 3, True),
        ([True, True, False, True, True], 2, False),
        ([True, True, None, True], 1, False),  # a failed check is never "drained"
        ([False, True, True, True], 3, True),
        ([True] * 7, 7, True),
    ],
)
def test_drain_confirmations_need_k_in_a_row(checks, count, confirmed):
    """Only K consecutive drained checks confirm; a backlog or an unreadable OLD starts over."""
    state = Confirmations(needed=3)
    for drained in checks:
        state = state.observe(drained)
    assert (state.count, state.confirmed) == (count, confirmed)


@given(seed=st.integers(), max_s=st.floats(0, 3600))
def test_jitter_stays_within_bounds(seed, max_s):
    """The pause after confirmation is in [0, MIGRATION_DRAIN_JITTER]."""
    assert 0 <= jitter_delay(random.Random(seed), max_s) <= max_s


def test_jitter_spreads_a_fleet():
    """A hundred supervisors with their own random sources do not restart together."""
    delays = [jitter_delay(random.Random(seed), 30) for seed in range(100)]
    assert len({round(d, 3) for d in delays}) > 90
    assert max(delays) - min(delays) > 20


def test_drained_decision_is_new_with_reason_old_drained():
    """After K confirmations the next life runs on NEW, logged with reason `old_drained`."""
    settings = Settings(new_redis_url="redis://new:6379/0", old_redis_url="redis://old:6379/0")
    decision = drained_decision(settings)
    assert (decision.side, decision.reason, decision.url) == (
        "new",
        "old_drained",
        "redis://new:6379/0",
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (0, 0),
        (3 << 8, 3),
        (255 << 8, 255),
        (signal.SIGKILL, 137),
        (signal.SIGTERM, 143),
        (signal.SIGINT, 130),
        (signal.SIGSEGV | 0x80, 139),  # core dumped
    ],
)
def test_exit_code_from_wait_status(status, code):
    """The child's code, or 128+N for signal N (core dump or not)."""
    assert exit_code(status) == code


def test_signal_table():
    """Every catchable signal is forwarded but SIGCHLD (ours), our own faults and PIPE/XFSZ/XCPU."""
    kept = {
        signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP,
        signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP,
        signal.SIGSYS, signal.SIGABRT,
        signal.SIGPIPE, signal.SIGXFSZ, signal.SIGXCPU,
    }  # fmt: skip
    assert not kept & set(FORWARDED)
    named = {
        signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1,
        signal.SIGUSR2, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGWINCH,
        signal.SIGCONT, signal.SIGALRM, signal.SIGPWR, signal.SIGURG, signal.SIGVTALRM,
        signal.SIGPROF, signal.SIGIO, signal.SIGSTKFLT, signal.SIGRTMIN, signal.SIGRTMAX,
    }  # fmt: skip
    assert named <= set(FORWARDED)
    real_time = set(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))
    assert real_time <= set(FORWARDED)
    standard = {s for s in signal.valid_signals() if isinstance(s, signal.Signals)}
    assert set(FORWARDED) == (standard - kept) | real_time
    assert min(real_time) > 33  # never glibc's own 32 and 33
    assert len(FORWARDED) == len(set(FORWARDED))
    assert {*FORWARDED, signal.SIGCHLD} == WAITED
    assert set(FORWARDED) >= STOP_REQUESTS


@pytest.mark.parametrize(
    ("signum", "expected"),
    [
        (signal.SIGTERM, "SIGTERM"),
        (signal.SIGRTMIN, "SIGRTMIN"),
        (signal.SIGRTMIN + 1, "SIGRTMIN+1"),
        (signal.SIGRTMAX - 1, f"SIGRTMIN+{signal.SIGRTMAX - 1 - signal.SIGRTMIN}"),
        (signal.SIGRTMAX, "SIGRTMAX"),
        (200, "200"),
    ],
)
def test_signal_names_cover_real_time_signals(signum, expected):
    """Events name every signal; real-time ones between the ends are SIGRTMIN+N (not a bare number)."""
    assert name(signum) == expected
