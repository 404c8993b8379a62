"""The worker is a process tree: a life ends when its first process and everything left of its tree
have ended, whether the supervisor is PID 1 of a fresh PID namespace or an ordinary process.

The stand-in worker (supervise_support/treeworker.py) logs every start, signal and end with its
pid and process group; each start also lists the processes of earlier lives still alive, which
must be none. The worker is started the way real images start it: a `#!/bin/sh` wrapper that
runs it without `exec`, or a launcher that forks it and waits.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.supervise_support import (
    PID1_PREFIX,
    SUPPORT,
    Supervised,
    host_pid_of_supervisor,
    needs_pid_namespace,
    supervise_env,
    wait_until,
)
from tests.test_supervise_convergence import convergence_env, seed_backlog

TREEWORKER = str(SUPPORT / "treeworker.py")
MODES = [
    pytest.param([], id="ordinary"),
    pytest.param(PID1_PREFIX, id="pid1", marks=needs_pid_namespace),
]


# What README advises for a shell wrapper under MIGRATION_FORWARD_TO_GROUP: the shell survives
# the signals meant for its worker (the worker gets them with their default dispositions back).
TRAP = "trap : HUP USR1 USR2 TSTP TTIN TTOU WINCH\n"


def wrapper(tmp_path: Path, log: Path, *options: str, trap: bool = False) -> list[str]:
    """`wrapper.sh`: a shell that runs the worker as its child (no `exec`), as many images do."""
    script = tmp_path / "wrapper.sh"
    script.write_text(f'#!/bin/sh\n{TRAP if trap else ""}{sys.executable} {TREEWORKER} "$@"\n')
    script.chmod(0o755)
    return [str(script), str(log), *options]


def records(log: Path, role: str | None = None, what: str | None = None) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [
        line
        for line in lines
        if (role is None or line["role"] == role) and (what is None or line["what"] == what)
    ]


def signals_of(log: Path, pid: int) -> list[str]:
    return [line["signal"] for line in records(log, what="signal") if line["pid"] == pid]


def supervisor_pid(sup: Supervised, prefix: list[str]) -> int:
    """The supervisor's pid as seen from here (under `unshare` it is unshare's child)."""
    return host_pid_of_supervisor(sup.pid) if prefix else sup.pid


def first_process(sup: Supervised, prefix: list[str]) -> psutil.Process:
    return wait_until(
        lambda: psutil.Process(supervisor_pid(sup, prefix)).children(), what="the first process"
    )[0]


def nothing_left(sup: Supervised, pids: list[int], prefix: list[str]) -> None:
    """After the supervisor: outside a namespace no pid of the tree survives it; inside, the
    kernel would have ended them anyway, so the graceful `exit` records are what prove it."""
    if not prefix:
        assert [pid for pid in pids if psutil.pid_exists(pid)] == []


def stop(sup: Supervised, prefix: list[str]) -> int:
    os.kill(supervisor_pid(sup, prefix), signal.SIGTERM)
    return sup.wait()


def event_names(sup: Supervised) -> list[str]:
    return [event["event"] for event in sup.events()]


@pytest.mark.parametrize("prefix", MODES)
@pytest.mark.parametrize("to_group", [False, True], ids=["to-first", "to-group"])
def test_stop_reaches_the_worker_behind_a_shell_wrapper(supervised, tmp_path, prefix, to_group):
    """TERM kills the shell at once; its worker still gets one TERM, finishes its 2 s and ends
    before the supervisor exits with the shell's code. With MIGRATION_FORWARD_TO_GROUP the TERM
    goes to both at once; without it the rest of the tree gets it when the shell is gone."""
    log = tmp_path / "log"
    env = supervise_env(
        {"MIGRATION_STOP_TIMEOUT": "20", "MIGRATION_FORWARD_TO_GROUP": str(to_group).lower()}
    )
    sup = supervised(wrapper(tmp_path, log, "--term-delay", "2"), env, prefix=prefix)
    (start,) = wait_until(lambda: records(log, "worker", "start"), what="the worker")
    assert stop(sup, prefix) == 143  # the first process's code: sh ended by TERM
    assert signals_of(log, start["pid"]) == ["SIGTERM"]
    (exit_record,) = records(log, "worker", "exit")
    term = records(log, "worker", "signal")[0]
    # it was given its time: no KILL, by us or by the kernel when PID 1 exits
    assert exit_record["t"] - term["t"] >= 2.0
    forwarded = sup.events("signal_forwarded")
    assert ("pgid" in forwarded[0]) is to_group
    (stopping,) = sup.events("worker_tree_stopping")
    assert stopping["processes"] == 1
    (gone,) = sup.events("worker_tree_exited")
    assert gone["killed"] is False
    assert sup.events("stop_timeout") == []
    names = event_names(sup)
    assert names.index("worker_tree_exited") < names.index("supervisor_exit")
    nothing_left(sup, [start["pid"]], prefix)


@pytest.mark.parametrize("prefix", MODES)
def test_forward_to_group_reaches_the_worker_behind_a_shell(supervised, tmp_path, prefix):
    """MIGRATION_FORWARD_TO_GROUP: HUP and USR1 reach the worker behind the (trapping) shell,
    which stays; without the option only the shell would hear them."""
    log = tmp_path / "log"
    env = supervise_env({"MIGRATION_FORWARD_TO_GROUP": "true"})
    sup = supervised(wrapper(tmp_path, log, trap=True), env, prefix=prefix)
    (start,) = wait_until(lambda: records(log, "worker", "start"), what="the worker")
    for count, signum in enumerate((signal.SIGHUP, signal.SIGUSR1), start=1):
        os.kill(supervisor_pid(sup, prefix), signum)
        wait_until(lambda n=count: len(signals_of(log, start["pid"])) == n, what=signum.name)
    assert signals_of(log, start["pid"]) == ["SIGHUP", "SIGUSR1"]
    assert first_process(sup, prefix).is_running() and sup.events("worker_exited") == []
    assert stop(sup, prefix) == 143
    assert signals_of(log, start["pid"]) == ["SIGHUP", "SIGUSR1", "SIGTERM"]


@pytest.mark.parametrize("prefix", MODES)
def test_a_launcher_that_forks_the_worker_and_waits(supervised, tmp_path, prefix):
    """The launcher dies on TERM (default handling); the worker it forked gets TERM from the
    supervisor, ends with its own code 5, and only then does the supervisor exit (143, the launcher's)."""
    log = tmp_path / "log"
    command = [sys.executable, TREEWORKER, str(log), "--launch", "--term-delay", "1"]
    sup = supervised([*command, "--exit-code", "5"], supervise_env(), prefix=prefix)
    (start,) = wait_until(lambda: records(log, "worker", "start"), what="the forked worker")
    (launcher,) = records(log, "launcher", "start")
    assert start["pgid"] == launcher["pgid"] == launcher["pid"]
    assert stop(sup, prefix) == 143
    assert signals_of(log, start["pid"]) == ["SIGTERM"]
    assert records(log, "worker", "exit")[0]["code"] == 5
    assert signals_of(log, launcher["pid"]) == []  # no handler: it simply died of the TERM
    nothing_left(sup, [start["pid"], launcher["pid"]], prefix)


@pytest.mark.parametrize("prefix", MODES)
def test_a_grandchild_that_ignores_term_is_killed_before_the_next_life(
    supervised, tmp_path, prefix
):
    """The worker crashes (exit 3) and leaves a grandchild that ignores TERM: it gets TERM, then
    KILL after the stop timeout, and the next life starts only once it is gone. The second life
    ends the same way and the supervisor gives up with the worker's code."""
    log = tmp_path / "log"
    command = [sys.executable, TREEWORKER, str(log), "--grandchild", "--exit-after", "0.5"]
    env = supervise_env({"MIGRATION_STOP_TIMEOUT": "1.5", "MIGRATION_MAX_RESTARTS": "1"})
    sup = supervised([*command, "--exit-code", "3"], env, prefix=prefix)
    assert sup.wait() == 3
    grandchildren = records(log, "grandchild", "start")
    workers = records(log, "worker", "start")
    assert len(grandchildren) == len(workers) == 2
    for grandchild in grandchildren:
        assert signals_of(log, grandchild["pid"]) == ["SIGTERM"]  # once, then KILL
    assert workers[1]["alive"] == []  # nothing of the first life when the second started
    kills = sup.events("stop_timeout")
    assert [k["processes"] for k in kills] == [1, 1]
    ends = sup.events("worker_tree_exited")
    assert [g["killed"] for g in ends] == [True, True]
    assert all(g["after_s"] >= 1.5 for g in ends)  # KILL only once the stop timeout has run out
    names = event_names(sup)
    second_start = [i for i, name in enumerate(names) if name == "worker_started"][1]
    assert names.index("worker_tree_exited") < second_start
    assert sup.events("restart_limit_reached")[0]["exit_code"] == 3
    nothing_left(sup, [line["pid"] for line in grandchildren + workers], prefix)


@pytest.mark.parametrize("prefix", MODES)
def test_crash_restart_waits_for_the_rest_of_the_tree(supervised, tmp_path, prefix):
    """The wrapper's shell is killed (137): its worker gets TERM and ends in its own time before
    the restart; the new life finds nothing of the old one."""
    log = tmp_path / "log"
    env = supervise_env({"MIGRATION_MAX_RESTARTS": "2", "MIGRATION_STOP_TIMEOUT": "20"})
    sup = supervised(wrapper(tmp_path, log, "--term-delay", "1"), env, prefix=prefix)
    (first,) = wait_until(lambda: records(log, "worker", "start"), what="the first worker")
    first_process(sup, prefix).kill()
    second = wait_until(
        lambda: records(log, "worker", "start")[1:], what="the second life", timeout=60
    )[0]
    assert signals_of(log, first["pid"]) == ["SIGTERM"]
    (first_exit,) = [e for e in records(log, "worker", "exit") if e["pid"] == first["pid"]]
    assert first_exit["t"] <= second["t"] and second["alive"] == []
    (scheduled,) = sup.events("restart_scheduled")
    assert scheduled["exit_code"] == 137
    assert stop(sup, prefix) == 143
    assert signals_of(log, second["pid"]) == ["SIGTERM"]
    nothing_left(sup, [first["pid"], second["pid"]], prefix)


@pytest.mark.parametrize("prefix", MODES)
def test_rss_restart_frees_the_whole_tree(supervised, tmp_path, prefix):
    """The tree's RSS (the worker behind the shell) passes MIGRATION_MAX_RSS: the worker gets TERM
    and has ended before the next life starts."""
    log = tmp_path / "log"
    env = supervise_env(
        {
            "MIGRATION_STATS_INTERVAL": "0.3",
            "MIGRATION_MAX_RSS": "40MiB",
            "MIGRATION_STOP_TIMEOUT": "20",
        }
    )
    options = ("--allocate-mib", "64", "--term-delay", "1")
    sup = supervised(wrapper(tmp_path, log, *options), env, prefix=prefix)
    first, second = wait_until(
        lambda: records(log, "worker", "start")[:2][1:] and records(log, "worker", "start")[:2],
        what="two lives",
        timeout=60,
    )
    exceeded = sup.events("rss_limit_exceeded")[0]
    assert exceeded["rss_bytes"] > 40 * 1024 * 1024
    stats = max(sup.events("worker_stats"), key=lambda e: e["tree_rss_bytes"])
    assert stats["descendants"] >= 1 and stats["tree_rss_bytes"] > stats["rss_bytes"]
    assert signals_of(log, first["pid"]) == ["SIGTERM"]
    (first_exit,) = [e for e in records(log, "worker", "exit") if e["pid"] == first["pid"]]
    assert first_exit["t"] <= second["t"] and second["alive"] == []
    assert sup.events("worker_restarting")[0]["reason"] == "rss_limit"
    assert stop(sup, prefix) == 143
    nothing_left(sup, [first["pid"], second["pid"]], prefix)


@pytest.mark.parametrize("prefix", MODES)
def test_convergence_moves_to_new_only_once_the_old_worker_has_ended(
    supervised, tmp_path, prefix, old_redis, new_redis
):
    """OLD drains: the wrapper's OLD worker gets TERM and finishes; only then starts the NEW life."""
    seed_backlog(old_redis.client())
    log = tmp_path / "log"
    env = convergence_env(old_redis.url, new_redis.url, MIGRATION_STOP_TIMEOUT="20")
    sup = supervised(wrapper(tmp_path, log, "--term-delay", "1"), env, prefix=prefix)
    (first,) = wait_until(lambda: records(log, "worker", "start"), what="the OLD worker")
    assert first["choice"] == "old"
    old_redis.client().delete("queue:default")
    second = wait_until(
        lambda: records(log, "worker", "start")[1:], what="the NEW life", timeout=60
    )[0]
    assert second["choice"] == "new" and second["alive"] == []
    assert signals_of(log, first["pid"]) == ["SIGTERM"]
    (first_exit,) = [e for e in records(log, "worker", "exit") if e["pid"] == first["pid"]]
    assert first_exit["t"] <= second["t"]
    assert sup.events("worker_restarting")[0]["reason"] == "old_drained"
    assert stop(sup, prefix) == 143
    nothing_left(sup, [first["pid"], second["pid"]], prefix)


def test_worker_stats_count_adopted_orphans(supervised, tmp_path):
    """A helper the worker left behind (now the supervisor's child) still counts in the tree."""
    script = (
        "import os, subprocess, time\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    subprocess.Popen(['sleep', '60'])\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "time.sleep(60)\n"
    )
    env = supervise_env({"MIGRATION_STATS_INTERVAL": "0.3"})
    sup = supervised([sys.executable, "-c", script], env)
    stats = wait_until(
        lambda: [e for e in sup.events("worker_stats") if e["adopted"] == 1],
        what="a sample that counts the adopted sleep",
    )[-1]
    assert stats["descendants"] == 1
    assert stats["tree_rss_bytes"] > stats["rss_bytes"]
