"""Zombie reaping and PID-1 behaviour of `cointoss supervise`, with real orphaned grandchildren.

Not PID 1 (as under ECS `initProcessEnabled` or `docker --init`) the supervisor registers as a child
subreaper, so orphans come to it; as PID 1 (in a fresh PID namespace via `unshare`) they come to it
because it is init. Either way, none may stay a zombie.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import psutil

from tests.supervise_support import (
    ORPHANER,
    PID1_PREFIX,
    host_pid_of_supervisor,
    needs_pid_namespace,
    recorded,
    recorder,
    starts,
    supervise_env,
    wait_until,
)

ORPHANS = 5


def orphan_parents(out_dir: Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(out_dir.glob("orphan-?"))]


def zombies_under(pid: int) -> list[psutil.Process]:
    """Zombie processes among the descendants of `pid` (a reaped orphan is simply gone)."""
    zombies = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                zombies.append(child)
        except psutil.NoSuchProcess:
            continue
    return zombies


def test_orphans_are_adopted_and_reaped_when_not_pid1(supervised, tmp_path):
    """As a subreaper the supervisor adopts each orphaned grandchild and reaps it: no zombie remains."""
    sup = supervised([sys.executable, ORPHANER, str(tmp_path), str(ORPHANS)], supervise_env())
    parents = wait_until(
        lambda: len(orphan_parents(tmp_path)) == ORPHANS and orphan_parents(tmp_path),
        what="every orphan to report its new parent",
    )
    assert parents == [sup.pid] * ORPHANS
    sup.wait_event("orphan_reaped", ORPHANS)
    (started,) = sup.events("supervisor_started")
    assert started["subreaper"] is True and started["pid1"] is False
    wait_until(lambda: zombies_under(sup.pid) == [], what="no zombies under the supervisor")
    sup.send(signal.SIGTERM)
    assert sup.wait() == 143  # the orphaner has no TERM handler: ended by signal 15


@needs_pid_namespace
def test_orphans_are_reaped_as_pid1(supervised, tmp_path):
    """As PID 1 of a PID namespace the supervisor is every orphan's parent and reaps them all."""
    sup = supervised(
        [sys.executable, ORPHANER, str(tmp_path), str(ORPHANS)], supervise_env(), prefix=PID1_PREFIX
    )
    parents = wait_until(
        lambda: len(orphan_parents(tmp_path)) == ORPHANS and orphan_parents(tmp_path),
        what="every orphan to report its new parent",
    )
    assert parents == [1] * ORPHANS
    sup.wait_event("orphan_reaped", ORPHANS)
    (started,) = sup.events("supervisor_started")
    assert started["pid1"] is True and started["pid"] == 1
    host_pid = host_pid_of_supervisor(sup.pid)
    wait_until(lambda: zombies_under(host_pid) == [], what="no zombies in the namespace")
    psutil.Process(host_pid).send_signal(signal.SIGTERM)
    assert sup.wait() == 143


@needs_pid_namespace
def test_signals_and_exit_codes_as_pid1(supervised, tmp_path):
    """As PID 1 (where the kernel drops unhandled signals) every signal still reaches the child."""
    record, start_file = tmp_path / "signals", tmp_path / "starts"
    command = recorder(record, "--starts", str(start_file), "--exit-code", "3")
    sup = supervised(command, supervise_env(), prefix=PID1_PREFIX)
    wait_until(lambda: starts(start_file), what="the recorder to start")
    host = psutil.Process(host_pid_of_supervisor(sup.pid))
    sent = [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTSTP, signal.SIGWINCH]
    for count, signum in enumerate(sent, start=1):
        host.send_signal(signum)
        wait_until(lambda n=count: len(recorded(record)) >= n, what=f"{signum.name} recorded")
    host.send_signal(signal.SIGTERM)
    assert sup.wait() == 3  # unshare passes the supervisor's exit code on
    assert recorded(record) == [s.name for s in sent] + ["SIGTERM"]


@needs_pid_namespace
def test_sigkilled_child_is_137_as_pid1(supervised):
    """A child ended by SIGKILL makes PID 1 exit 137, never 0."""
    sup = supervised(["sh", "-c", "kill -KILL $$"], supervise_env(), prefix=PID1_PREFIX)
    assert sup.wait() == 137
