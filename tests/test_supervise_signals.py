"""`cointoss supervise` with real processes: signal forwarding, the child's signal state, stopping, exit codes."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from tests.supervise_support import (
    recorded,
    recorder,
    starts,
    supervise_env,
    wait_until,
)

NON_STOP = [
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGWINCH,
    signal.SIGCONT,
]


def started_recorder(supervised, tmp_path: Path, *options: str, env=None):
    """A supervisor running the recorder, returned once the recorder has installed its handlers."""
    record, start_file = tmp_path / "signals", tmp_path / "starts"
    sup = supervised(
        recorder(record, "--starts", str(start_file), *options), env or supervise_env()
    )
    wait_until(lambda: starts(start_file), what="the recorder to start")
    return sup, record, start_file


def test_every_non_stop_signal_reaches_the_child_once_and_in_order(supervised, tmp_path):
    """HUP, USR1, USR2, TSTP, TTIN, TTOU, WINCH and CONT are each forwarded once; the child keeps running."""
    sup, record, _ = started_recorder(supervised, tmp_path)
    for count, signum in enumerate(NON_STOP, start=1):
        sup.send(signum)
        wait_until(lambda n=count: len(recorded(record)) >= n, what=f"{signum.name} recorded")
    assert recorded(record) == [s.name for s in NON_STOP]
    assert sup.process.poll() is None
    sup.send(signal.SIGTERM)
    assert sup.wait() == 0
    assert recorded(record) == [s.name for s in NON_STOP] + ["SIGTERM"]


def test_other_catchable_signals_reach_the_child_too(supervised, tmp_path):
    """ALRM, PWR, VTALRM and real-time signals (not in `signal.Signals`) are forwarded once each;
    before, their default action ended the supervisor and left the worker running orphaned."""
    sup, record, start_file = started_recorder(supervised, tmp_path)
    sent = [signal.SIGALRM, signal.SIGPWR, signal.SIGRTMIN + 1, signal.SIGVTALRM, signal.SIGRTMAX]
    names = ["SIGALRM", "SIGPWR", "SIGRTMIN+1", "SIGVTALRM", "SIGRTMAX"]
    for count, signum in enumerate(sent, start=1):
        sup.send(signum)
        wait_until(lambda n=count: len(recorded(record)) >= n, what=f"signal {signum} recorded")
    assert recorded(record) == names
    assert [e["signal"] for e in sup.events("signal_forwarded")] == names
    assert sup.process.poll() is None
    (start,) = starts(start_file)
    assert psutil.Process(start["pid"]).status() != psutil.STATUS_ZOMBIE
    assert sup.events("worker_exited") == []
    sup.send(signal.SIGTERM)
    assert sup.wait() == 0
    assert recorded(record) == [*names, "SIGTERM"]


def test_an_external_sigpipe_or_sigxfsz_is_ignored_not_forwarded(supervised, tmp_path):
    """PIPE and XFSZ stay the supervisor's own (ignored, as Python sets them): a `kill -PIPE` to it
    changes nothing, neither for it nor for the worker."""
    sup, record, start_file = started_recorder(supervised, tmp_path)
    sup.send(signal.SIGPIPE)
    sup.send(signal.SIGXFSZ)
    # a later, higher-numbered signal: had PIPE or XFSZ been waited for, it would come first
    sup.send(signal.SIGWINCH)
    wait_until(lambda: "SIGWINCH" in recorded(record), what="WINCH recorded")
    assert recorded(record) == ["SIGWINCH"]
    assert [e["signal"] for e in sup.events("signal_forwarded")] == ["SIGWINCH"]
    assert sup.process.poll() is None
    (start,) = starts(start_file)
    assert psutil.Process(start["pid"]).status() != psutil.STATUS_ZOMBIE
    with open(f"/proc/{sup.pid}/status") as handle:
        ignored = next(int(line.split(":")[1], 16) for line in handle if line.startswith("SigIgn"))
    assert ignored & (1 << (signal.SIGPIPE - 1)) and ignored & (1 << (signal.SIGXFSZ - 1))
    sup.send(signal.SIGTERM)
    assert sup.wait() == 0


def test_supervisor_is_not_stopped_by_job_control_signals(supervised, tmp_path):
    """TSTP, TTIN and TTOU are forwarded, never acted on by the supervisor itself (it must not stop)."""
    sup, record, _ = started_recorder(supervised, tmp_path)
    for signum in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        sup.send(signum)
    wait_until(lambda: len(recorded(record)) == 3, what="three job-control signals recorded")
    assert psutil.Process(sup.pid).status() != psutil.STATUS_STOPPED
    sup.send(signal.SIGUSR1)  # still serving: the next signal is forwarded too
    wait_until(lambda: "SIGUSR1" in recorded(record), what="USR1 after TSTP")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_stop_signal_is_forwarded_and_the_childs_exit_code_is_returned(
    supervised, tmp_path, signum
):
    """TERM, INT and QUIT go to the child; the supervisor exits with the code the child chose."""
    sup, record, _ = started_recorder(supervised, tmp_path, "--exit-code", "3")
    sup.send(signum)
    assert sup.wait() == 3
    assert recorded(record) == [signum.name]
    assert sup.events("stop_requested")[0]["signal"] == signum.name
    assert sup.events("restart_scheduled") == []


def test_child_starts_with_an_empty_mask_and_default_dispositions(supervised):
    """Blocked signals and ignored ones (SIGPIPE; HUP and SIGRTMIN+6 ignored by our parent) are reset."""
    ignore_some = [
        sys.executable,
        "-c",
        "import os, signal, sys\n"
        "for s in (signal.SIGHUP, signal.SIGRTMIN + 6): signal.signal(s, signal.SIG_IGN)\n"
        "os.execvp(sys.argv[1], sys.argv[1:])",
    ]
    probe = ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]
    sup = supervised(probe, supervise_env(), prefix=ignore_some)
    assert sup.wait() == 0
    lines = dict(line.split(":") for line in sup.output().splitlines() if line.startswith("Sig"))
    assert int(lines["SigBlk"], 16) == 0
    assert int(lines["SigIgn"], 16) == 0


def test_child_runs_in_its_own_process_group_as_our_child(supervised, tmp_path):
    """The worker leads its own group, so a stop's final KILL can take its helpers with it."""
    sup, _, start_file = started_recorder(supervised, tmp_path)
    (start,) = starts(start_file)
    assert start["pgid"] == start["pid"] != os.getpgid(sup.pid)
    assert start["ppid"] == sup.pid


def test_stop_timeout_kills_a_child_that_ignores_term_and_its_group(supervised, tmp_path):
    """A child that ignores TERM is KILLed (with its process group) after MIGRATION_STOP_TIMEOUT: exit 137."""
    helper_pid_file = tmp_path / "helper.pid"
    script = (
        "import subprocess, sys, signal, time\n"
        f"p = subprocess.Popen(['sleep', '300']); open({str(helper_pid_file)!r}, 'w').write(str(p.pid))\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "time.sleep(300)\n"
    )
    env = supervise_env({"MIGRATION_STOP_TIMEOUT": "1"})
    sup = supervised([sys.executable, "-c", script], env)
    helper = int(wait_until(lambda: helper_pid_file.exists() and helper_pid_file.read_text()))
    sup.send(signal.SIGTERM)
    assert sup.wait() == 137
    (timeout,) = sup.events("stop_timeout")
    assert timeout["stop_timeout_s"] == 1.0
    (exited,) = sup.events("worker_exited")
    assert exited["signal"] == "SIGKILL" and exited["runtime_s"] >= 1.0
    wait_until(lambda: not psutil.pid_exists(helper), what="the worker's helper process to be gone")


def test_term_waits_for_a_slow_but_graceful_child(supervised, tmp_path):
    """A child that takes a while to stop (but less than the timeout) is not killed: its own code wins."""
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(1.0), sys.exit(5)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(300)\n"
    )
    sup = supervised(
        [sys.executable, "-c", script], supervise_env({"MIGRATION_STOP_TIMEOUT": "20"})
    )
    wait_until(lambda: "ready" in sup.output(), what="child ready")
    sup.send(signal.SIGTERM)
    assert sup.wait() == 5
    assert sup.events("stop_timeout") == []


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ("exit 0", 0),
        ("exit 3", 3),
        ("kill -KILL $$", 137),
        ("kill -TERM $$", 143),
        ("kill -SEGV $$", 139),
    ],
)
def test_exit_code_is_the_childs_or_128_plus_the_signal(supervised, tmp_path, script, code):
    """The shell's convention: the child's exit code, or 128+N when signal N ended it (never 0)."""
    sup = supervised(["sh", "-c", script], supervise_env())
    assert sup.wait() == code
    (exited,) = sup.events("worker_exited")
    assert exited["exit_code"] == code


def test_a_child_ended_by_a_real_time_signal_is_named_and_128_plus_n(supervised):
    """`signal.Signals` has no member for SIGRTMIN+2: the end is still logged by name, and 128+N."""
    script = "import os, signal; os.kill(os.getpid(), signal.SIGRTMIN + 2)"
    sup = supervised([sys.executable, "-c", script], supervise_env())
    assert sup.wait() == 128 + signal.SIGRTMIN + 2
    (exited,) = sup.events("worker_exited")
    assert exited["signal"] == "SIGRTMIN+2"


def test_missing_command_is_127_and_non_executable_is_126(tmp_path):
    """Command errors are found before any toss: 127 not found, 126 not executable, one line each."""
    from tests.conftest import run_cointoss

    plain = tmp_path / "plain.txt"
    plain.write_text("not a program")
    missing = run_cointoss(["supervise", "--", "no-such-program-xyz"], supervise_env())
    assert missing.returncode == 127
    assert missing.stderr.strip().splitlines() == [
        "cointoss: no-such-program-xyz: command not found"
    ]
    denied = run_cointoss(["supervise", "--", str(plain)], supervise_env())
    assert denied.returncode == 126
    assert "Traceback" not in denied.stderr


def test_supervise_without_a_command_is_a_usage_error():
    """`cointoss supervise` alone says how to use it and exits 64."""
    from tests.conftest import run_cointoss

    result = run_cointoss(["supervise"], supervise_env())
    assert result.returncode == 64
    assert "cointoss supervise -- COMMAND" in result.stderr


def test_forwarding_survives_a_burst_of_signals(supervised, tmp_path):
    """Fifty USR1 sent one after another (each acknowledged) are all forwarded: none lost, none doubled."""
    sup, record, _ = started_recorder(supervised, tmp_path)
    for count in range(1, 51):
        os.kill(sup.pid, signal.SIGUSR1)
        wait_until(lambda n=count: len(recorded(record)) >= n, what=f"USR1 #{count}")
    assert recorded(record) == ["SIGUSR1"] * 50
    assert len(sup.events("signal_forwarded")) == 50
