"""`cointoss demo`: the whole migration on one machine, with the fleet the repository ships.

Two real redis-servers, a fleet of real tasks built from `ecs/task-definition.json`, a backlog on
OLD, a producer on NEW, rolling deployments within the service's limits, chaos kills, the mover,
and a verdict read from the `RecordJob` ledgers: nothing lost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from supervisor.demo.chart import Marker, Sample
from supervisor.demo.display import Display
from supervisor.demo.fleet import Fleet, Task
from supervisor.demo.plan import (
    DEFAULT_DEPLOYMENTS,
    DEFAULT_JOBS,
    DEFAULT_KILLS,
    DEFAULT_TIMEOUT_S,
    DEMO_TASK_ENV,
    DemoPlan,
    count,
    make_plan,
    positive_count,
    task_environment,
    weight_option,
)
from supervisor.demo.rollout_plan import plan_rollout
from supervisor.demo.summary import TaskChoice, deployment_split, format_summary, tally_jobs
from supervisor.demo.taskdef import (
    task_argv,
)
from supervisor.demo.workload import (
    LEDGER,
    ledger_client,
    produce,
    read_ledger,
    seed_backlog,
)
from supervisor.errors import CoinTossError
from supervisor.redact import redact_text
from supervisor.toss.ecs_metadata import MetadataEndpoint, TaskMetadata

PAUSE_S = 4.0  # between deployments: time for the split to do some work (and for kills)
SAMPLE_EVERY_S = 0.5
TICK_S = 0.1
HEALTHY_TIMEOUT_S = 30.0
DRAIN_CONFIRM_S = 3.0  # longer than the workers' recovery interval: orphans are back by then
NO_CONSUMER_S = 3.0  # OLD has work but no task on it this long: roll again (a reshuffle)
MAX_RESHUFFLES = 3
MAX_UNEXPECTED_EXITS = 5
URL_SECRETS = ("MIGRATION_NEW_REDIS_URL", "MIGRATION_OLD_REDIS_URL")

STOP_TIMEOUT_CAP_S = 10.0


class DemoError(CoinTossError):
    """The demo could not run its story (a task that cannot start, a Redis that is not empty)."""


class _DeadlineReached(Exception):
    """The run's time budget is spent: stop waiting, report what happened."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the whole migration on this machine: two embedded Redis, the ecs/ task definition's"
        " fleet, rolling deployments, chaos kills, the mover, and a no-job-lost verdict."
    )
    parser.add_argument(
        "--tasks", type=positive_count, help="fleet size (default: service.json desiredCount)"
    )
    parser.add_argument(
        "--jobs",
        type=count,
        default=DEFAULT_JOBS,
        help="backlog seeded on OLD; as many are produced on NEW (default %(default)s)",
    )
    parser.add_argument(
        "--deployments",
        type=count,
        default=DEFAULT_DEPLOYMENTS,
        help="rolling deployments after the first fleet; the last one sets weight 1 (default %(default)s)",
    )
    parser.add_argument(
        "--kills",
        type=count,
        default=DEFAULT_KILLS,
        help="tasks killed with SIGKILL along the way (default %(default)s)",
    )
    parser.add_argument(
        "--strategy",
        choices=("random", "sticky", "even"),
        help="MIGRATION_STRATEGY for the fleet (default: the task definition's)",
    )
    parser.add_argument(
        "--mode",
        choices=("exec", "supervise"),
        help="cointoss exec or cointoss supervise as entrypoint (default: the task definition's)",
    )
    parser.add_argument(
        "--weight",
        type=weight_option,
        help="MIGRATION_NEW_WEIGHT before the cut-over (default: the task definition's, else 0.5)",
    )
    parser.add_argument("--seed", type=int, help="makes the coin and the chaos reproducible")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("demo-out"),
        help="writes summary.json, events.jsonl and chart.png here (default %(default)s)",
    )
    parser.add_argument(
        "--ecs-dir",
        type=Path,
        help="where task-definition.json and service.json are (default: the repository's ecs/)",
    )
    parser.add_argument(
        "--old-redis",
        metavar="URL",
        help="use this empty Redis as OLD instead of starting one (a URL in argv is visible to ps: use local servers without a password)",
    )
    parser.add_argument(
        "--new-redis", metavar="URL", help="use this empty Redis as NEW instead of starting one"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="give up waiting after this many seconds (default %(default)s)",
    )


@dataclass
class Deployment:
    """One revision's life in the run."""

    revision: int
    weight: float
    started_s: float
    why: str = ""
    finished_s: float | None = None


@dataclass
class DemoState:
    """What the run saw, kept for the summary and written out at the end."""

    events: list[dict[str, Any]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    produced: list[str] = field(default_factory=list)
    seeded: list[str] = field(default_factory=list)
    kills: int = 0
    unexpected_exits: int = 0
    mover_runs: int = 0
    moved: int = 0
    old_drained_s: float | None = None
    timed_out: bool = False


class Demo:
    """One run: the orchestrator's thread drives the phases; the sampler and producer have theirs."""

    def __init__(self, plan: DemoPlan, old_url: str, new_url: str, display: Display) -> None:
        self.plan = plan
        self.old_url, self.new_url = old_url, new_url
        self.display = display
        self.state = DemoState()
        self._rng = random.Random(plan.seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._revision = 0
        self._weight = plan.weights[0]
        self._task_number = 0
        self._latest: Sample | None = None
        self._old_drained = False
        self._mover_done_s = 0.0
        self._producer_done = threading.Event()
        self._endpoint = MetadataEndpoint()
        self._fleet = Fleet(
            task_argv(plan.template, plan.mode, sys.executable), self._on_task_event
        )
        self._stop_timeout_s = min(plan.template.stop_timeout_s, STOP_TIMEOUT_CAP_S)

    # --- the story -------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self._check_empty()
        self._seed_old()
        with self._endpoint, self._background(self._sample_loop), self._background(self._produce):
            try:
                self._story()
            except _DeadlineReached:
                self.state.timed_out = True
                self.record_event("demo_timeout", after_s=self.plan.timeout_s)
                self.display.note(f"time budget of {self.plan.timeout_s:g} s spent; stopping")
            finally:
                self.display.phase("stopping the fleet")
                self._fleet.stop_all(self._stop_timeout_s)
        return self._summary()

    def _story(self) -> None:
        weights = self.plan.weights
        self._start_fleet(weights[0])
        pauses = max(1, len(weights) - 1)
        self._pause(0, pauses)
        for index, weight in enumerate(weights[1:-1], start=1):
            self._roll(weight)
            self._pause(index, pauses)
        if len(weights) > 1:
            self._wait_for_drain()
            self._roll(weights[-1], why="cut-over")
        self._wait_for_jobs()

    def _start_fleet(self, weight: float) -> None:
        self._revision, self._weight = 1, weight
        self._begin_deployment(weight, "first fleet")
        started = [self._start_task() for _ in range(self.plan.limits.desired)]
        self._wait_healthy(started)
        self._end_deployment()

    def _roll(self, weight: float, why: str = "") -> None:
        """A rolling deployment within minimumHealthyPercent / maximumPercent, step by step."""
        old_tasks = sorted(self._fleet.live(), key=lambda task: task.started_at)
        self._revision += 1
        self._weight = weight
        self._begin_deployment(weight, why)
        for step in plan_rollout(self.plan.limits):
            stopping, old_tasks = old_tasks[: step.stop_old], old_tasks[step.stop_old :]
            self._fleet.stop(stopping, self._stop_timeout_s)
            self._wait_healthy([self._start_task() for _ in range(step.start_new)])
        self._fleet.stop(old_tasks, self._stop_timeout_s)  # any extra left by a replacement
        self._end_deployment()

    def _pause(self, index: int, pauses: int) -> None:
        """Lets the split work for a while; this pause's share of the chaos kills happens here."""
        self.display.phase(f"running at weight {self._weight:g}")
        mine = range(index, self.plan.kills, pauses)
        due = sorted(self._rng.uniform(0.5, PAUSE_S - 0.5) for _ in mine)
        started = time.monotonic()
        while time.monotonic() - started < PAUSE_S:
            if due and time.monotonic() - started >= due[0]:
                due.pop(0)
                self._kill_one()
            self._tick()

    def _wait_for_drain(self) -> None:
        """OLD must be drained (and stay so past the orphan-recovery interval) before weight 1."""
        self.display.phase("waiting for OLD to drain")
        reshuffles, confirmed_since, no_consumer_since = 0, None, None
        while True:
            self._tick()
            sample = self._latest
            if sample is None:
                continue
            if self._old_drained:
                confirmed_since = confirmed_since or time.monotonic()
                if time.monotonic() - confirmed_since >= DRAIN_CONFIRM_S:
                    return
                continue
            confirmed_since = None
            stuck = sample.old_queued > 0 and sample.tasks_old == 0 and 0 < self._weight < 1
            if not stuck:
                no_consumer_since = None
                continue
            no_consumer_since = no_consumer_since or time.monotonic()
            if time.monotonic() - no_consumer_since >= NO_CONSUMER_S:
                if reshuffles == MAX_RESHUFFLES:
                    return  # the cut-over then strands OLD's queue: the summary will say lost
                reshuffles += 1
                self._roll(self._weight, why="reshuffle: OLD had work and no consumer")
                no_consumer_since = None

    def _wait_for_jobs(self) -> None:
        self.display.phase("waiting for the last jobs")
        while True:
            self._tick()
            if self._producer_done.is_set() and self._latest is not None:
                done = self._latest.processed_old + self._latest.processed_new
                if (
                    done >= len(self.state.seeded) + len(self.state.produced)
                    and self._all_processed()
                ):
                    return

    # --- one tick: deadline, replacements, the mover ------------------------------------------

    def _tick(self) -> None:
        if self._elapsed() > self.plan.timeout_s:
            raise _DeadlineReached
        for task in list(self._fleet.tasks):
            if task.unexpected_exit:
                self._replace(task)
        sample = self._latest
        if (
            sample is not None
            and sample.t_s > self._mover_done_s
            and sample.old_queued == 0
            and sample.old_later > 0
        ):
            self._run_mover()
        time.sleep(TICK_S)

    def _replace(self, task: Task) -> None:
        """The service keeps its desired count: a task that died is replaced at the current revision."""
        task.stopping = True  # handled
        code = task.process.returncode
        self.record_event("demo_task_exited", task=task.task_id, code=code)
        self.state.unexpected_exits += 1
        if self.state.unexpected_exits >= MAX_UNEXPECTED_EXITS:  # a crash loop, not chaos
            when = "before choosing a Redis" if task.first_side is None else "on its own"
            tail = task.tail[-1] if task.tail else "no output"
            raise DemoError(f"task {task.task_id} exited with {code} {when}: {redact_text(tail)}")
        self._start_task()

    def _kill_one(self) -> None:
        candidates = [task for task in self._fleet.live() if task.first_side is not None]
        if not candidates:
            return
        victim = self._rng.choice(candidates)
        self._fleet.kill(victim)
        self.state.kills += 1
        self._mark("kill", f"kill {victim.task_id}")
        self.record_event(
            "demo_task_killed", task=victim.task_id, side=victim.side, signal="SIGKILL"
        )
        self.display.note(
            f"SIGKILL task {victim.task_id} (on {victim.side}); the service replaces it"
        )
        self._start_task()

    def _run_mover(self) -> None:
        from supervisor.migration.mover import run_move
        from supervisor.settings import Settings

        self.state.mover_runs += 1
        self._mark("mover", "mover")
        self.display.note("only scheduled/retry jobs left on OLD: running the mover")
        settings = Settings(new_redis_url=self.new_url, old_redis_url=self.old_url, key_prefix="")
        report = run_move(settings, only=frozenset({"schedule", "retry"}), log=_EventLog(self))
        moved = _moved_count(report)
        self.state.moved += moved
        self.record_event("demo_mover_done", moved=moved)
        self.display.note(f"mover moved {moved} job(s) to NEW")
        self._mover_done_s = self._elapsed()  # the next decision waits for a fresh look

    # --- tasks -----------------------------------------------------------------------------

    def _start_task(self) -> Task:
        self._task_number += 1
        task_id = f"t{self._task_number:03d}"
        uri = self._endpoint.register(
            TaskMetadata(task_id, self.plan.template.family, self._revision)
        )
        overrides = {
            **DEMO_TASK_ENV,
            "MIGRATION_NEW_WEIGHT": repr(self._weight),
            "MIGRATION_STRATEGY": self.plan.strategy,
            "ECS_CONTAINER_METADATA_URI_V4": uri,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [_package_root(), self.plan.environ.get("PYTHONPATH")])
            ),
        }
        if self.plan.seed is not None:
            overrides["MIGRATION_SEED"] = str(self.plan.seed * 100_003 + self._task_number)
        urls = {"MIGRATION_NEW_REDIS_URL": self.new_url, "MIGRATION_OLD_REDIS_URL": self.old_url}
        env = task_environment(self.plan.environ, self.plan.template, urls, overrides)
        task = self._fleet.start(task_id, self._revision, self._weight, env)
        self.record_event(
            "demo_task_started", task=task_id, revision=self._revision, weight=self._weight
        )
        return task

    def _wait_healthy(self, tasks: list[Task]) -> None:
        """Healthy = it chose a Redis and handed over to the worker; replacements count too."""
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        while any(task.alive and task.first_side is None for task in tasks):
            if time.monotonic() > deadline:
                slow = next(task for task in tasks if task.first_side is None)
                raise DemoError(
                    f"task {slow.task_id} did not choose a Redis within {HEALTHY_TIMEOUT_S:g} s"
                )
            self._tick()

    def _on_task_event(self, task: Task, event: dict[str, Any]) -> None:
        with self._lock:
            self.state.events.append({**event, "demo_task": task.task_id})
        if event.get("event") == "redis_selected":
            self.display.note(
                f"task {task.task_id} rev {task.revision}: {event.get('side')} ({event.get('reason')})"
            )

    # --- Redis: seed, produce, sample, ledgers ---------------------------------------------------

    def _check_empty(self) -> None:
        from supervisor.connections import check_client, redis_errors, unreachable

        for role, url in (("OLD", self.old_url), ("NEW", self.new_url)):
            try:
                keys = check_client(url, timeout_s=2).dbsize()
            except redis_errors() as exc:
                raise unreachable(role, url, exc) from None
            if keys:
                raise DemoError(f"{role} Redis is not empty; the demo only seeds empty servers")

    def _seed_old(self) -> None:
        seeded = seed_backlog(self.old_url, self.plan.jobs, self.plan.queues, self._rng)
        self.state.seeded = list(seeded.jids)
        self.record_event(
            "demo_seeded", queued=seeded.queued, scheduled=seeded.scheduled, retry=seeded.retry
        )
        self.display.note(
            f"seeded OLD: {seeded.queued} queued, {seeded.scheduled} scheduled,"
            f" {seeded.retry} to retry"
        )

    def _produce(self) -> None:
        def pushed(jids: list[str]) -> None:
            with self._lock:
                self.state.produced += jids

        if produce(self.new_url, self.plan.jobs, self.plan.queues, self._stop, pushed):
            self._producer_done.set()

    def _sample_loop(self) -> None:
        from supervisor.layouts.sidekiq.backlog import read_backlog

        old, new = ledger_client(self.old_url), ledger_client(self.new_url)
        while not self._stop.is_set():
            try:
                old_backlog, new_backlog = read_backlog(old), read_backlog(new)
                processed_old, processed_new = old.hlen(LEDGER), new.hlen(LEDGER)
            except Exception:  # a look that failed is skipped, not fatal
                self._stop.wait(SAMPLE_EVERY_S)
                continue
            live = self._fleet.live()
            sample = Sample(
                t_s=self._elapsed(),
                old_queued=old_backlog.queued,
                old_later=old_backlog.scheduled,
                new_queued=new_backlog.queued,
                new_later=new_backlog.scheduled,
                tasks_old=sum(task.side == "old" for task in live),
                tasks_new=sum(task.side == "new" for task in live),
                tasks_starting=sum(task.side is None for task in live),
                processed_old=processed_old,
                processed_new=processed_new,
            )
            if old_backlog.drained and self.state.old_drained_s is None:
                self.state.old_drained_s = sample.t_s
                self.record_event("demo_old_drained", after_s=round(sample.t_s, 2))
                self.display.note("OLD is drained")
            self._old_drained = old_backlog.drained
            self.state.samples.append(sample)
            self._latest = sample
            self.display.sample(sample)
            self._stop.wait(SAMPLE_EVERY_S)

    def _all_processed(self) -> bool:
        old, new = self._ledgers()
        processed = old.keys() | new.keys()
        return all(jid in processed for jid in (*self.state.seeded, *self.state.produced))

    def _ledgers(self) -> tuple[dict[str, int], dict[str, int]]:
        return read_ledger(self.old_url), read_ledger(self.new_url)

    # --- bookkeeping -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _background(self, target: Any) -> Iterator[None]:
        thread = threading.Thread(target=target, name=target.__name__, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join(10)

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    def record_event(self, event: str, **fields: Any) -> None:
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        with self._lock:
            self.state.events.append(
                {"event": event, "source": "demo", **fields, "timestamp": stamp}
            )

    def _mark(self, kind: str, label: str) -> None:
        self.state.markers.append(Marker(self._elapsed(), kind, label))

    def _begin_deployment(self, weight: float, why: str) -> None:
        self.state.deployments.append(Deployment(self._revision, weight, self._elapsed(), why))
        self._mark("deployment", f"rev {self._revision} w={weight:g}")
        self.record_event(
            "demo_deployment_started", revision=self._revision, weight=weight, why=why
        )
        self.display.phase(
            f"deploying revision {self._revision} at weight {weight:g} {why}".strip()
        )

    def _end_deployment(self) -> None:
        self.state.deployments[-1].finished_s = self._elapsed()
        self.record_event("demo_deployment_finished", revision=self._revision)

    def _summary(self) -> dict[str, Any]:
        old, new = self._ledgers()
        tally = tally_jobs((*self.state.seeded, *self.state.produced), old, new)
        rows = []
        for deployment in self.state.deployments:
            tasks = [t for t in self._fleet.tasks if t.revision == deployment.revision]
            choices = [TaskChoice(t.first_side, t.first_reason, t.side) for t in tasks]
            row = deployment_split(
                deployment.revision, deployment.weight, self.plan.strategy, choices
            )
            row.update(
                why=deployment.why,
                started_s=round(deployment.started_s, 2),
                finished_s=None
                if deployment.finished_s is None
                else round(deployment.finished_s, 2),
            )
            rows.append(row)
        return {
            "tasks": self.plan.limits.desired,
            "strategy": self.plan.strategy,
            "mode": self.plan.mode,
            "weights": self.plan.weights,
            "seed": self.plan.seed,
            "service": {
                "desiredCount": self.plan.limits.desired,
                "minimumHealthyPercent": self.plan.limits.minimum_healthy_percent,
                "maximumPercent": self.plan.limits.maximum_percent,
            },
            "elapsed_s": round(self._elapsed(), 2),
            "timed_out": self.state.timed_out,
            "deployments": rows,
            "kills": self.state.kills,
            "old_drained_after_s": None
            if self.state.old_drained_s is None
            else round(self.state.old_drained_s, 2),
            "mover": {"runs": self.state.mover_runs, "moved": self.state.moved},
            "jobs": {
                "seeded_on_old": len(self.state.seeded),
                "produced_on_new": len(self.state.produced),
                "expected": tally.expected,
                "processed_on_old": tally.processed_on_old,
                "processed_on_new": tally.processed_on_new,
                "runs_on_old": tally.runs_on_old,
                "runs_on_new": tally.runs_on_new,
                "lost": tally.lost,
                "duplicates": tally.duplicates,
                "unexpected": tally.unexpected,
                "lost_jids": list(tally.lost_jids),
                "duplicate_jids": list(tally.duplicate_jids),
            },
        }


class _EventLog:
    """Lets the mover log into the demo's event record, like any structlog logger."""

    def __init__(self, demo: Demo) -> None:
        self._demo = demo

    def _log(self, event: str, **fields: Any) -> None:
        self._demo.record_event(event, **fields)

    info = warning = error = debug = _log


def _moved_count(report: Any) -> int:
    moved = getattr(report, "moved", 0)
    if isinstance(moved, Mapping):
        return int(sum(moved.values()))
    return int(moved or 0)


def _package_root() -> str:
    """Where `supervisor` and `worker_app` are importable from: tasks run this very code."""
    return str(Path(__file__).resolve().parents[2])


def write_outputs(out: Path, summary: Mapping[str, Any], state: DemoState) -> list[Path]:
    """summary.json, events.jsonl (every event, in order) and, with matplotlib, chart.png."""
    from supervisor.demo.chart import ChartUnavailable, draw_chart

    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    events_path = out / "events.jsonl"
    with events_path.open("w") as handle:
        for event in state.events:
            handle.write(json.dumps(event) + "\n")
    try:
        chart_path = draw_chart(
            state.samples,
            state.markers,
            out / "chart.png",
            f"cointoss demo: {summary['tasks']} tasks, {summary['strategy']}, {summary['mode']}",
        )
    except ChartUnavailable as missing:
        print(missing, file=sys.stderr)
        return [summary_path, events_path]
    return [summary_path, events_path, chart_path]


def run(args: argparse.Namespace, _settings: None) -> int:
    """Exit 0 when nothing was lost and every job ran; 1 otherwise (the summary says what)."""
    from supervisor.demo.embedded_redis import RedisServer
    from supervisor.toss.execenv import launch_environ

    plan = make_plan(args, launch_environ())
    with contextlib.ExitStack() as stack:
        urls = []
        for given in (args.old_redis, args.new_redis):
            urls.append(given or stack.enter_context(RedisServer()).url)
        display = stack.enter_context(Display())
        demo = Demo(plan, urls[0], urls[1], display)
        summary = demo.run()
        paths = write_outputs(args.out, summary, demo.state)
    print(format_summary(summary))
    print("wrote " + ", ".join(str(path) for path in paths))
    jobs = summary["jobs"]
    complete = (
        jobs["lost"] == 0
        and jobs["processed_on_old"] + jobs["processed_on_new"] >= jobs["expected"]
    )
    return 0 if complete else 1
