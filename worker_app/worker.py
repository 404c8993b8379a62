"""The worker process: N processor threads, heartbeat, poller and orphan recovery, plus signals.

TERM/INT: stop fetching, let running jobs finish until shortly before WORKER_SHUTDOWN_TIMEOUT,
put the unfinished ones back unchanged at the end the fetch reads first, leave `processes`, exit 0.
TSTP: quiet (finish running jobs, fetch nothing new). TTIN: every thread's stack in the log.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import redis

from worker_app import keys
from worker_app.classes import REGISTRY, JobContext
from worker_app.config import EX_CONFIG, WorkerConfig
from worker_app.connection import connect, host_of
from worker_app.fetch import ReliableFetch, UnitOfWork
from worker_app.heartbeat import Heartbeat, ProcessState, new_identity
from worker_app.jobs import Job, JobFormatError, load_job, now
from worker_app.resilience import Backoff, OutageLog
from worker_app.retries import Failure, on_failure
from worker_app.scheduler import Poller

IDLE_QUIET_S = 0.5


def thread_tid() -> str:
    """Sidekiq's short base-36 thread id (the field name in `<identity>:work`)."""
    value = threading.get_ident() ^ os.getpid()
    digits = ""
    while value:
        value, rem = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rem] + digits
    return digits or "0"


class Worker:
    def __init__(self, config: WorkerConfig, log: Any) -> None:
        self.config = config
        self.host = host_of(config.redis_url)
        self.log = log.bind(host=self.host)
        self.identity = new_identity()
        self.redis = connect(config.redis_url)
        self.state = ProcessState()
        self.fetcher = ReliableFetch(self.redis, self.identity, config.queues, config.concurrency)
        self.heartbeat = Heartbeat(self.redis, self.identity, config, self.state, self.log)
        self.poller = Poller(self.redis, config.poll_interval, self.log)
        self.outage = OutageLog(self.log)
        self.stopping = threading.Event()  # no more fetching: TERM/INT
        self.quiet = threading.Event()  # no more fetching, stay alive: TSTP
        self.background_stop = threading.Event()
        self.current: dict[int, UnitOfWork] = {}  # slot -> the job it is running
        self.buffer: deque[UnitOfWork] = deque()  # fetched in a batch, not started yet
        self.acks: deque[UnitOfWork] = deque()  # finished, acknowledged by the next fetch
        self.processors: list[threading.Thread] = []

    # --- life cycle -------------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        try:
            self.redis.ping()
        except redis.AuthenticationError as exc:  # wrong credentials will not fix themselves
            self.log.error("redis_auth_failed", error=str(exc))
            return EX_CONFIG
        except redis.RedisError:
            pass  # unreachable for now: the first beat keeps trying
        if not self._first_beat():
            return self._finish(time.monotonic())
        self._recover()
        self.log.info(
            "worker_app_started",
            identity=self.identity,
            pid=os.getpid(),
            queues=list(self.config.queues.names),
            strict=self.config.queues.strict,
            concurrency=self.config.concurrency,
            shutdown_timeout=self.config.shutdown_timeout,
        )
        self._start_threads()
        while not self.stopping.wait(0.5):
            pass
        return self._finish(self._stop_started)

    def _first_beat(self) -> bool:
        """The heartbeat exists before the first fetch, so no recoverer mistakes us for dead."""
        backoff = Backoff()
        while not self.stopping.is_set():
            if self.heartbeat.beat():
                return True
            self.stopping.wait(backoff.next_delay())
        return False

    def _start_threads(self) -> None:
        for slot in range(self.config.concurrency):
            thread = threading.Thread(
                target=self._process_loop, args=(slot,), name=f"processor-{slot}", daemon=True
            )
            self.processors.append(thread)
        background: list[tuple[str, Callable[[], None]]] = [
            ("heartbeat", lambda: self.heartbeat.run(self.background_stop)),
            ("poller", self._poll_loop),
            ("recovery", self._recovery_loop),
        ]
        for name, target in background:
            threading.Thread(target=target, name=name, daemon=True).start()
        for thread in self.processors:
            thread.start()

    def _finish(self, started: float) -> int:
        deadline = (
            started + self.config.shutdown_timeout - min(1.0, self.config.shutdown_timeout * 0.2)
        )
        self._release_held(deadline)
        for thread in self.processors:
            thread.join(max(0.0, deadline - time.monotonic()))
        requeued = self._requeue_running()
        self._release_held(deadline)
        self.background_stop.set()
        if not self.outage.down:  # best effort: the heartbeat hash expires on its own anyway
            self.heartbeat.flush_stats()
            self.heartbeat.clear()
        self.log.info(
            "worker_app_stopped",
            identity=self.identity,
            requeued=requeued,
            seconds=round(time.monotonic() - started, 3),
        )
        sys.stderr.flush()
        return 0

    def _requeue_running(self) -> int:
        """Jobs still running at the deadline go back unchanged; they may run again (at least once).

        With Redis down they stay in the in-flight list, which recovery hands back later."""
        count = 0
        if self.outage.down:
            return count
        for work in list(self.current.values()):
            try:
                if self.fetcher.requeue(work):
                    count += 1
                    self.log.warning("job_requeued", queue=work.queue, jid=_jid(work.payload))
            except redis.RedisError as exc:
                self.log.error("requeue_failed", queue=work.queue, error=str(exc))
        return count

    # --- signals ----------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._stop_started = time.monotonic()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGTSTP, self._on_quiet)
        signal.signal(signal.SIGTTIN, self._on_ttin)

    def _on_stop(self, signum: int, _frame: object) -> None:
        if not self.stopping.is_set():
            self._stop_started = time.monotonic()
            self.log.info("signal_received", signal=signal.Signals(signum).name, action="stop")
            self.stopping.set()

    def _on_quiet(self, _signum: int, _frame: object) -> None:
        self.log.info("signal_received", signal="SIGTSTP", action="quiet")
        self.state.quiet = True
        self.quiet.set()

    def _on_ttin(self, _signum: int, _frame: object) -> None:
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            self.log.info(
                "thread_dump",
                thread=names.get(ident, str(ident)),
                stack=[line.rstrip() for line in traceback.format_stack(frame)],
            )

    # --- processors -------------------------------------------------------------------------

    def _process_loop(self, slot: int) -> None:
        tid = thread_tid()
        backoff = Backoff()
        while not self.stopping.is_set():
            if self.quiet.is_set():
                self._release_held()
                self.stopping.wait(IDLE_QUIET_S)
                continue
            work = self._next_work(slot, backoff)
            if work is None:
                continue
            if self.stopping.is_set() or self.quiet.is_set():
                self._until_done(partial(self.fetcher.requeue, work), "requeue")
                continue
            try:
                if self._perform(slot, tid, work):
                    self.acks.append(work)
            except Exception as exc:  # a bug of ours must not cost a processor thread
                self.log.exception("processor_error", queue=work.queue, error=str(exc))

    def _next_work(self, slot: int, backoff: Backoff) -> UnitOfWork | None:
        """From the local buffer if a batch left some, else from Redis (carrying the acks)."""
        try:
            return self.buffer.popleft()
        except IndexError:
            pass
        acks = _drain(self.acks)
        try:
            works = self.fetcher.fetch(slot, acks)
        except redis.RedisError as exc:
            self.acks.extend(acks)
            self.outage.failed(exc, "fetch")
            self.stopping.wait(backoff.next_delay())
            return None
        backoff.reset()
        self.outage.succeeded()
        if not works:
            return None
        self.buffer.extend(works[1:])
        return works[0]

    def _release_held(self, deadline: float | None = None) -> None:
        """Quiet or stopping: acknowledge what finished, hand back what never started."""
        acks = _drain(self.acks)
        if acks:
            self._until_done(lambda: self.fetcher.ack(acks), "ack", deadline)
        for work in _drain(self.buffer):
            self._until_done(partial(self.fetcher.requeue, work), "requeue", deadline)

    def _perform(self, slot: int, tid: str, work: UnitOfWork) -> bool:
        """Runs one job; True when it succeeded and still needs its ack."""
        try:
            job = load_job(work.payload)
        except JobFormatError as exc:
            self._bury_malformed(work, str(exc))
            return False
        self.current[slot] = work
        self.state.running[tid] = (work.queue, work.payload, int(now()))
        started = time.perf_counter()
        try:
            self._execute(job, work.queue)
        except (Exception, SystemExit) as exc:  # a job calling sys.exit() is a failed job
            self.state.count(failed=True)
            self._fail(job, work, exc, started)
            return False
        finally:
            self.state.running.pop(tid, None)
            self.current.pop(slot, None)
        self.state.count(failed=False)
        self.log.info(
            "job_done",
            jid=job.get("jid"),
            job_class=job.get("class"),
            queue=work.queue,
            ms=round((time.perf_counter() - started) * 1000, 3),
        )
        return True

    def _execute(self, job: Job, queue: str) -> None:
        name = job.get("class")
        job_class = REGISTRY.get(name) if isinstance(name, str) else None
        if job_class is None:
            raise UnknownJobClassError(f"uninitialized constant {name}")
        args = job.get("args")
        if not isinstance(args, list):
            raise JobArgumentsError(f"job args must be an Array: {args!r}")
        ctx = JobContext(job, queue, self.redis, self.config.producer_url)
        job_class(ctx).perform(*args)

    def _fail(self, job: Job, work: UnitOfWork, exc: BaseException, started: float) -> None:
        failure = Failure(
            _ruby_class_name(exc), str(exc), tuple(traceback.format_tb(exc.__traceback__))
        )
        outcome = on_failure(job, failure, work.queue, now())
        self.log.warning(
            "job_failed",
            jid=job.get("jid"),
            job_class=job.get("class"),
            queue=work.queue,
            error_class=failure.error_class,
            error=failure.message[:500],
            outcome=outcome.target,
            retry_at=outcome.score if outcome.target == "retry" else None,
            ms=round((time.perf_counter() - started) * 1000, 3),
        )
        if outcome.target == "drop":
            self._until_done(lambda: self.fetcher.ack([work]), "ack")
            return
        target = keys.RETRY if outcome.target == "retry" else keys.DEAD
        self._until_done(
            lambda: self.fetcher.settle(work, target, outcome.score, outcome.payload), "settle"
        )

    def _bury_malformed(self, work: UnitOfWork, reason: str) -> None:
        """Sidekiq puts a payload it cannot parse into `dead` as its raw bytes; so do we."""
        self.state.count(failed=True)
        self.log.error(
            "malformed_job_dead", queue=work.queue, reason=reason, bytes=len(work.payload)
        )
        self._until_done(
            lambda: self.fetcher.settle(work, keys.DEAD, now(), work.payload), "settle"
        )

    def _until_done(
        self, action: Callable[[], object], where: str, deadline: float | None = None
    ) -> None:
        """Retries through a Redis outage; gives up only when the process is exiting anyway
        (the job then stays in the in-flight list and is recovered: at least once)."""
        backoff = Backoff()
        while True:
            try:
                action()
                self.outage.succeeded()
                return
            except redis.RedisError as exc:
                self.outage.failed(exc, where)
                if deadline is not None and time.monotonic() > deadline:
                    return
                if self.background_stop.wait(backoff.next_delay()):
                    return

    # --- background -------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        backoff = Backoff()

        def on_error(exc: Exception) -> float:
            self.outage.failed(exc, "poller")
            return backoff.next_delay()

        self.poller.run(self.background_stop, _Either(self.quiet, self.stopping), on_error)

    def _recovery_loop(self) -> None:
        while not self.background_stop.wait(self.config.recovery_interval):
            self._recover()

    def _recover(self) -> None:
        try:
            moved = self.fetcher.recover_orphans()
        except redis.RedisError as exc:
            self.outage.failed(exc, "recovery")
            return
        if moved:
            self.log.warning("orphans_recovered", queues=moved, jobs=sum(moved.values()))


class UnknownJobClassError(NameError):
    """No registered class by that name; takes the retry path, as Ruby's NameError does."""


class JobArgumentsError(ValueError):
    """`args` is not a JSON array."""


_RUBY_NAMES = {UnknownJobClassError: "NameError", JobArgumentsError: "ArgumentError"}


def _ruby_class_name(exc: BaseException) -> str:
    return _RUBY_NAMES.get(type(exc), type(exc).__name__)


class _Either:
    """`is_set()` of two events, for the poller's pause check (quiet or stopping)."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)


def _jid(payload: bytes) -> str | None:
    try:
        return str(load_job(payload).get("jid"))
    except JobFormatError:
        return None


def _drain(items: deque[UnitOfWork]) -> list[UnitOfWork]:
    """Takes everything out of a deque other threads append to."""
    taken: list[UnitOfWork] = []
    while True:
        try:
            taken.append(items.popleft())
        except IndexError:
            return taken
