"""`cointoss supervise`: toss as `exec` does, then stay as the worker's parent until the end.

The supervisor forwards signals, reaps zombies, restarts a worker that dies unexpectedly, samples
it, and moves it from OLD to NEW once OLD has stayed drained, so a fleet converges without a
deployment. Everything happens in one thread that sleeps in `sigtimedwait` with the waited
signals blocked: idle, it costs nothing until a signal or the next timer is due.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from supervisor.errors import CoinTossError
from supervisor.layouts import get_layout
from supervisor.logs import get_logger, output
from supervisor.settings import Settings
from supervisor.supervision import automigrate, signals, tree
from supervisor.supervision.child import spawn
from supervisor.supervision.convergence import Confirmations, drained_decision, jitter_delay
from supervisor.supervision.oldwatch import OldWatch
from supervisor.supervision.reaper import become_subreaper, reap_all
from supervisor.supervision.restarts import (
    Finish,
    GiveUp,
    Restart,
    RestartPolicy,
    after_exit,
    in_window,
)
from supervisor.supervision.workerstats import WorkerSampler
from supervisor.toss.decide import Decision
from supervisor.toss.entrypoint import current_identity
from supervisor.toss.execenv import build_env, launch_environ, resolve_command
from supervisor.toss.identity import TaskIdentity
from supervisor.toss.selection import choose, selected_fields


class Phase(Enum):
    """What the supervisor is doing with its worker."""

    RUNNING = "running"  # the worker runs; nothing was asked of it
    STOPPING = "stopping"  # a stop was asked: exit as soon as the worker's tree has ended
    RESTARTING = "restarting"  # we asked the worker to end: start the next one once its tree has
    BACKOFF = "backoff"  # the worker died: wait, then start the next one


class Timer(Enum):
    KILL = "kill"  # the graceful stop ran out of time
    TREE_CHECK = "tree_check"  # the first process is gone: look again at what is left of its tree
    RESTART = "restart"  # the backoff after a death is over
    STATS = "stats"  # next worker_stats sample
    DRAIN_CHECK = "drain_check"  # next look at OLD
    DRAIN_RESTART = "drain_restart"  # OLD confirmed drained; the jittered pause is over


# How often the rest of a tree is looked at once its first process is gone. Members that are not
# our children end without telling us (their own parent reaps them), so this is a poll; it runs
# only while a life is ending, never while the worker simply runs.
TREE_POLL_S = 0.1
# A log pipe nobody reads: how often the loop retries the lines it holds back, and how long the
# supervisor waits for them on its way out at most (a stop still ends within its timeout).
OUTPUT_RETRY_S = 0.25
OUTPUT_DRAIN_S = 1.0


@dataclass
class Worker:
    """One life: the first process (which leads its own group), its decision, its sampler, and
    what is known of its end."""

    pid: int
    decision: Decision
    started_at: float
    sampler: WorkerSampler | None
    status: int | None = None  # the first process's wait status, once reaped
    ended_at: float = 0.0
    killed: bool = False  # the stop timeout ran out: whatever is left gets KILL
    termed: set[int] = field(default_factory=set)  # adopted orphans already sent TERM
    group_stopped: bool = False  # a stop signal already went to the whole group
    leftovers: bool = False  # the first process ended before the rest of its tree

    @property
    def pgid(self) -> int:
        return self.pid


def run(command: list[str], settings: Settings) -> int:
    """Resolve (127/126 first), block the waited signals before any thread exists, toss, supervise."""
    environ = launch_environ()
    path = resolve_command(command, environ)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals.WAITED)
    output().never_block()
    subreaper = become_subreaper()
    identity = current_identity(environ)
    log = get_logger()
    decision = choose(settings, identity, log)
    log.info(
        "supervisor_started",
        pid=os.getpid(),
        pid1=os.getpid() == 1,
        subreaper=subreaper,
        stop_timeout_s=settings.stop_timeout,
        max_restarts=settings.max_restarts,
        restart_window_s=settings.restart_window,
    )
    supervisor = Supervisor(command, path, settings, identity, log)
    code = supervisor.serve(decision)
    log.info("supervisor_exit", exit_code=code, log_lines_dropped=output().dropped)
    output().drain(supervisor.drain_budget())
    if supervisor.fatal is not None:
        raise supervisor.fatal  # its one line on stderr, and its exit code (78)
    return code


class Supervisor:
    """The loop: wait for a signal or the next timer, act, repeat until an exit code is known."""

    def __init__(
        self,
        command: list[str],
        path: str,
        settings: Settings,
        identity: TaskIdentity,
        log: Any,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.command = command
        self.path = path
        self.settings = settings
        self.identity = identity
        self.log = log
        self.clock = clock
        self.rng = rng or random.Random()
        self.policy = RestartPolicy(settings.max_restarts, settings.restart_window)
        self.phase = Phase.RUNNING
        self.worker: Worker | None = None
        self.timers: dict[Timer, float] = {}
        self.restarts: list[float] = []
        self.confirmations = Confirmations(settings.drain_confirmations)
        self.old_watch: OldWatch | None = None
        self.auto_migrator = (
            automigrate.AutoMigrator(settings, log) if automigrate.available(settings) else None
        )
        self.next_decision: Decision | None = None  # for RESTARTING; None means toss again
        self.last_exit_code = 0
        self.exit_code: int | None = None
        self.stop_deadline: float | None = None  # when a requested stop must be over
        self.fatal: CoinTossError | None = None  # OLD refused a command: stop, then exit with it

    # --- the loop -------------------------------------------------------------------------

    def serve(self, decision: Decision) -> int:
        self._start(decision)
        while self.exit_code is None:
            info = self._wait()
            if info is not None:
                self._on_signal(info.si_signo)
            self._run_due_timers()
            if output().pending:
                output().retry()
        self._stop_watching_old()
        return self.exit_code

    def _wait(self) -> Any:
        """Sleeps in the kernel until a waited signal arrives or the earliest timer is due."""
        deadlines = [*self.timers.values()]
        if output().pending:
            deadlines.append(self.clock() + OUTPUT_RETRY_S)
        if not deadlines:
            return signal.sigwaitinfo(signals.WAITED)
        timeout = max(0.0, min(deadlines) - self.clock())
        return signal.sigtimedwait(signals.WAITED, timeout)

    def _run_due_timers(self) -> None:
        now = self.clock()
        for timer, deadline in sorted(self.timers.items(), key=lambda item: item[1]):
            if deadline <= now and self.timers.get(timer) == deadline and self.exit_code is None:
                del self.timers[timer]
                self._on_timer(timer)

    def _on_timer(self, timer: Timer) -> None:
        if timer is Timer.KILL:
            self._kill_worker()
        elif timer is Timer.TREE_CHECK:
            self._check_tree()
        elif timer is Timer.RESTART:
            self._start_next(None)
        elif timer is Timer.STATS:
            self._sample()
        elif timer is Timer.DRAIN_CHECK:
            self._check_old()
        elif timer is Timer.DRAIN_RESTART:
            self._restart_gracefully("old_drained", drained_decision(self.settings))

    def _after(self, timer: Timer, seconds: float) -> None:
        self.timers[timer] = self.clock() + seconds

    def drain_budget(self) -> float:
        """How long the held-back log lines may delay the exit: never past a stop's deadline."""
        if self.stop_deadline is None:
            return OUTPUT_DRAIN_S
        return min(OUTPUT_DRAIN_S, max(0.0, self.stop_deadline - self.clock()))

    # --- signals --------------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            self._reap()
            return
        if self.worker is None:
            self.log.info("signal_not_forwarded", signal=signals.name(signum), reason="no_worker")
        else:
            self._send(signum)
        if signum in signals.STOP_REQUESTS:
            self._request_stop(signum)

    def _request_stop(self, signum: int) -> None:
        """Forwarded already; now wait up to the stop timeout (or exit at once with no worker)."""
        if self.stop_deadline is None:
            self.stop_deadline = self.clock() + self.settings.stop_timeout
        if self.worker is None:
            self.exit_code = self.last_exit_code
            return
        if self.phase is Phase.STOPPING:
            return
        self.log.info(
            "stop_requested", signal=signals.name(signum), stop_timeout_s=self.settings.stop_timeout
        )
        self.phase = Phase.STOPPING
        for timer in (Timer.RESTART, Timer.DRAIN_CHECK, Timer.DRAIN_RESTART):
            self.timers.pop(timer, None)
        self.timers.setdefault(Timer.KILL, self.stop_deadline)

    def _send(self, signum: int) -> None:
        """To the first process, or to its whole group when asked to (MIGRATION_FORWARD_TO_GROUP)
        or when the first process is gone and only the rest of its tree is left to hear it."""
        assert self.worker is not None
        if self.worker.status is None and not self.settings.forward_to_group:
            os.kill(self.worker.pid, signum)
            self.log.info("signal_forwarded", signal=signals.name(signum), pid=self.worker.pid)
            return
        try:
            os.killpg(self.worker.pgid, signum)
        except ProcessLookupError:
            return
        self.worker.group_stopped |= signum in signals.STOP_REQUESTS
        self.log.info("signal_forwarded", signal=signals.name(signum), pgid=self.worker.pgid)

    def _kill_worker(self) -> None:
        """The graceful stop ran out of time: KILL the whole tree (group and adopted orphans)."""
        if self.worker is None:
            return
        left = tree.members(self.worker.pgid)
        self.log.warning(
            "stop_timeout",
            pid=self.worker.pid,
            stop_timeout_s=self.settings.stop_timeout,
            processes=len(left),
        )
        self.worker.killed = True
        tree.send(self.worker.pgid, left.adopted, signal.SIGKILL)

    def _reap(self) -> None:
        for pid, status in reap_all():
            if self.worker is not None and pid == self.worker.pid:
                self._on_worker_exit(status)
            else:
                self.log.info("orphan_reaped", pid=pid, exit_code=signals.exit_code(status))
        if self.worker is not None and self.worker.status is not None:
            self._check_tree()

    def _check_tree(self) -> None:
        """The first process is gone: the life ends once nothing of its tree is left. Until then
        the rest gets TERM once (each adopted orphan as it shows up), KILL after the stop timeout."""
        worker = self.worker
        if worker is None or worker.status is None:
            return
        self.timers.pop(Timer.TREE_CHECK, None)
        left = tree.members(worker.pgid)
        if not left:
            self._on_life_end(worker)
            return
        if worker.killed:
            worker.leftovers = True
            tree.send(worker.pgid, left.adopted, signal.SIGKILL)
        elif not worker.leftovers:
            worker.leftovers = True
            self.timers.setdefault(Timer.KILL, self.clock() + self.settings.stop_timeout)
            self.log.info(
                "worker_tree_stopping",
                pid=worker.pid,
                pgid=worker.pgid,
                processes=len(left),
                pids=left.pids,
                signal=signals.name(signals.GRACEFUL_STOP),
                kill_in_s=round(max(0.0, self.timers[Timer.KILL] - self.clock()), 3),
            )
            worker.termed.update(left.adopted)
            group = None if worker.group_stopped else worker.pgid  # told already: once is enough
            tree.send(group, left.adopted, signals.GRACEFUL_STOP)
        elif new := set(left.adopted) - worker.termed:
            worker.termed.update(new)
            tree.send(None, sorted(new), signals.GRACEFUL_STOP)
        self._after(Timer.TREE_CHECK, TREE_POLL_S)

    # --- the worker's life ------------------------------------------------------------------

    def _start(self, decision: Decision) -> None:
        """Logs the choice, starts the worker on it and arms the timers that watch it."""
        fields = selected_fields(self.settings, decision, self.identity, self.command[0])
        self.log.info("redis_selected", **fields)
        env = build_env(launch_environ(), self.settings, decision)
        pid = spawn(self.path, self.command, env)
        self.worker = Worker(pid, decision, self.clock(), _sampler(pid))
        self.phase = Phase.RUNNING
        self.log.info("worker_started", pid=pid, side=decision.side, restarts=len(self.restarts))
        self._after(Timer.STATS, self.settings.stats_interval)
        self.confirmations = Confirmations(self.settings.drain_confirmations)
        if self._watches_old(decision) or self.auto_migrator is not None:
            self._after(Timer.DRAIN_CHECK, self.settings.drain_check_interval)
        else:
            self._stop_watching_old()

    def _start_next(self, decision: Decision | None) -> None:
        """A new worker life: a fresh toss unless the decision is already made (OLD drained)."""
        try:
            self._start(decision or choose(self.settings, self.identity, self.log))
        except CoinTossError as exc:
            self.log.error("restart_failed", error=str(exc), exit_code=exc.exit_code)
            self._after_death(exc.exit_code)

    def _on_worker_exit(self, status: int) -> None:
        """The first process has ended: its code is the life's, but the life lasts as long as its tree."""
        assert self.worker is not None
        code = signals.exit_code(status)
        ended_by = signals.ended_by_signal(status)
        self.log.info(
            "worker_exited",
            pid=self.worker.pid,
            exit_code=code,
            signal=signals.name(ended_by) if ended_by is not None else None,
            runtime_s=round(self.clock() - self.worker.started_at, 3),
            phase=self.phase.value,
        )
        self.worker.status = status
        self.worker.ended_at = self.clock()
        self.last_exit_code = code
        for timer in (Timer.STATS, Timer.DRAIN_CHECK, Timer.DRAIN_RESTART):
            self.timers.pop(timer, None)

    def _on_life_end(self, worker: Worker) -> None:
        """Nothing of the tree is left: now, and only now, exit or start the next life."""
        if worker.leftovers:
            self.log.info(
                "worker_tree_exited",
                pid=worker.pid,
                pgid=worker.pgid,
                killed=worker.killed,
                after_s=round(self.clock() - worker.ended_at, 3),
            )
        self.worker = None
        for timer in (Timer.KILL, Timer.TREE_CHECK):
            self.timers.pop(timer, None)
        code = self.last_exit_code
        if self.phase is Phase.STOPPING:
            self.exit_code = self.fatal.exit_code if self.fatal else code
        elif self.phase is Phase.RESTARTING:
            self._start_next(self.next_decision)
        else:
            self._after_death(code)

    def _after_death(self, code: int) -> None:
        """The restart policy's verdict on an end nobody asked for."""
        now = self.clock()
        outcome = after_exit(self.policy, self.restarts, now, code)
        if isinstance(outcome, Finish):
            self.exit_code = outcome.exit_code
        elif isinstance(outcome, GiveUp):
            self.log.error(
                "restart_limit_reached",
                exit_code=code,
                restarts_in_window=outcome.restarts_in_window,
                max_restarts=self.policy.max_restarts,
                restart_window_s=self.policy.window_s,
            )
            self.exit_code = outcome.exit_code
        elif isinstance(outcome, Restart):
            self.restarts = [*in_window(self.policy, self.restarts, now), now]
            self.phase = Phase.BACKOFF
            self._after(Timer.RESTART, outcome.delay_s)
            self.log.warning(
                "restart_scheduled",
                exit_code=code,
                delay_s=outcome.delay_s,
                attempt=outcome.attempt,
                max_restarts=self.policy.max_restarts,
            )

    def _restart_gracefully(self, reason: str, next_decision: Decision | None) -> None:
        """Asks the worker to finish (TERM, then KILL after the stop timeout) and starts the next."""
        if self.worker is None or self.worker.status is not None or self.phase is not Phase.RUNNING:
            return
        self.log.info("worker_restarting", reason=reason, pid=self.worker.pid)
        self._send(signals.GRACEFUL_STOP)
        self.phase = Phase.RESTARTING
        self.next_decision = next_decision
        self._after(Timer.KILL, self.settings.stop_timeout)

    # --- monitoring -----------------------------------------------------------------------

    def _sample(self) -> None:
        self._after(Timer.STATS, self.settings.stats_interval)
        stats = self.worker.sampler.sample() if self.worker and self.worker.sampler else None
        if stats is None or self.worker is None:
            return
        self.log.info("worker_stats", side=self.worker.decision.side, **stats)
        limit = self.settings.max_rss
        if limit is not None and stats["tree_rss_bytes"] > limit and self.phase is Phase.RUNNING:
            self.log.warning(
                "rss_limit_exceeded", rss_bytes=stats["tree_rss_bytes"], max_rss_bytes=int(limit)
            )
            self._restart_gracefully("rss_limit", None)

    # --- convergence ----------------------------------------------------------------------

    def _watches_old(self, decision: Decision) -> bool:
        return decision.side == "old" and self.settings.drain_checks_on

    def _check_old(self) -> None:
        """One look at OLD: it may start auto-migrate; for a worker on OLD it counts towards the move.

        After K drained looks in a row, a jittered pause, then the worker is restarted on NEW.
        """
        if self.worker is None or self.phase is not Phase.RUNNING:
            return
        if self.old_watch is None:
            assert self.settings.old_redis_url is not None
            layout = get_layout(self.settings)
            assert layout is not None  # drain_checks_on, or auto-migrate, needs one
            self.old_watch = OldWatch(self.settings.old_redis_url, layout, self.log)
        try:
            backlog = self.old_watch.check()
        except CoinTossError as exc:
            self._stop_for(exc)
            return
        if self.auto_migrator is not None and self.auto_migrator.fatal is not None:
            self._stop_for(self.auto_migrator.fatal)
            return
        if self.auto_migrator is not None and backlog is not None:
            self.auto_migrator.consider(backlog)
        if not self._watches_old(self.worker.decision):
            self._after(Timer.DRAIN_CHECK, self.settings.drain_check_interval)
            return
        self.confirmations = self.confirmations.observe(
            backlog.drained if backlog else None,
            backlog.heartbeats if backlog else (),
            self.clock(),
        )
        self.log.info(
            "drain_check",
            drained=bool(backlog and backlog.drained),
            consecutive=self.confirmations.count,
            needed=self.confirmations.needed,
            queued=backlog.queued if backlog else None,
            waiting=backlog.scheduled if backlog else None,  # movable by cointoss migrate
            held=sum(backlog.held.values()) if backlog else None,
            busy=backlog.busy if backlog else None,
        )
        if not self.confirmations.confirmed:
            self._after(Timer.DRAIN_CHECK, self.settings.drain_check_interval)
            return
        delay = jitter_delay(self.rng, self.settings.drain_jitter)
        self.log.info("old_drained", checks=self.confirmations.count, delay_s=delay)
        self._after(Timer.DRAIN_RESTART, delay)

    def _stop_for(self, error: CoinTossError) -> None:
        """OLD refused a command (78): no later look can succeed, and watching blind would keep
        the worker on OLD forever, so the worker is stopped gracefully and the supervisor exits
        with the error's code and line."""
        self.log.error("drain_check_refused", error=str(error), exit_code=error.exit_code)
        self.fatal = error
        if self.worker is not None:
            os.kill(self.worker.pid, signals.GRACEFUL_STOP)
        self._request_stop(signals.GRACEFUL_STOP)

    def _stop_watching_old(self) -> None:
        if self.old_watch is not None:
            self.old_watch.close()
            self.old_watch = None


def _sampler(pid: int) -> WorkerSampler | None:
    """psutil can lose the race with a worker that exits at once; then there is nothing to sample."""
    import psutil

    try:
        return WorkerSampler(pid)
    except psutil.Error:
        return None
