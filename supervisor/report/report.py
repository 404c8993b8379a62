"""`cointoss report`: did the fleet split the way the weight said? Read from the fleet's own logs.

Input: files (or stdin) in any shape `logparse` understands. Each `redis_selected` event goes
through a chain of small `(record) -> record` steps (time, task, rollout, weight, side), then the
choices are folded per rollout and weight into a `RolloutSummary`, which is printed as a table
(rich, on a terminal or not) or as JSON (`--json`).

What counts, precisely:

- A *task* is its `task_arn`; without one (not on ECS), `hostname:pid`. A supervised task that
  restarts its worker logs `redis_selected` again with the same identity (the supervisor's pid
  stays), so it stays one task; a task's *current side* is its latest decision.
- The *split* is judged on tossed tasks only: each task's first decision whose reason is `coin`
  or `even_sequence`. Overrides (`weight_is_0/1`, `old_drained`, `old_unreachable`) are not coin
  tosses and would bias the test, so they are listed under reasons instead.
- OLD is *known drained* from the earliest `old_drained` event, or `redis_selected` with reason
  `old_drained`, in the input. A task *chose OLD after OLD was drained* when it logged
  `redis_selected` with side `old` strictly later than that moment (events without a readable
  timestamp are never counted as later).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from supervisor.errors import InputUnreadableError
from supervisor.report.binomial import LEVEL, binomial_interval
from supervisor.report.logparse import Event, iter_entries

SELECTED = "redis_selected"
DRAINED = "old_drained"
TOSS_REASONS = frozenset({"coin", "even_sequence"})
SIDES = ("new", "old")
STDIN = "-"
EXAMPLES_SHOWN = 5

Record = dict[str, Any]


# --- the chain: each step takes a record and returns it with one normalised field -------------


def with_time(record: Record) -> Record:
    """`_time`: the event's ISO 8601 timestamp as an aware datetime (UTC if no zone), or None."""
    raw = record.get("timestamp")
    moment = None
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw.strip())
        except ValueError:
            moment = None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return {**record, "_time": moment}


def with_task(record: Record) -> Record:
    """`_task`: task_arn, else hostname:pid (a supervised task keeps its pid across restarts)."""
    arn = _text(record.get("task_arn"))
    if arn:
        task = arn
    else:
        host, pid = _text(record.get("hostname")), _text(record.get("pid"))
        task = f"{host}:{pid}" if host or pid else "unknown"
    return {**record, "_task": task}


def with_rollout(record: Record) -> Record:
    """`_rollout`: the logged rollout, else Family:Revision, else `default` (as selection does)."""
    family, revision = _text(record.get("family")), _text(record.get("revision"))
    fallback = f"{family}:{revision}" if family else "default"
    return {**record, "_rollout": _text(record.get("rollout")) or fallback}


def with_weight(record: Record) -> Record:
    """`_weight`: a float in [0, 1], or None when missing or not a weight (CSV gives strings)."""
    raw = record.get("weight")
    try:
        weight = None if isinstance(raw, bool) else float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        weight = None
    if weight is not None and not 0 <= weight <= 1:
        weight = None
    return {**record, "_weight": weight}


def with_side(record: Record) -> Record:
    """`_side`: `new` or `old`; anything else makes the event unusable (counted as malformed)."""
    side = _text(record.get("side")).lower()
    return {**record, "_side": side if side in SIDES else None}


CHAIN: tuple[Callable[[Record], Record], ...] = (
    with_time,
    with_task,
    with_rollout,
    with_weight,
    with_side,
)


def normalise(record: Record) -> Record:
    for step in CHAIN:
        record = step(record)
    return record


def _text(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value).strip()


# --- the fold ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """One usable `redis_selected` event, with its position in the input to break time ties."""

    index: int
    rollout: str
    weight: float | None
    task: str
    side: str
    reason: str
    strategy: str
    time: datetime | None

    @property
    def order(self) -> tuple[bool, datetime, int]:
        return (self.time is None, self.time or datetime.min.replace(tzinfo=UTC), self.index)


def to_choice(index: int, record: Record) -> Choice | None:
    if record["_side"] is None:
        return None
    return Choice(
        index=index,
        rollout=record["_rollout"],
        weight=record["_weight"],
        task=record["_task"],
        side=record["_side"],
        reason=_text(record.get("reason")) or "unknown",
        strategy=_text(record.get("strategy")) or "unknown",
        time=record["_time"],
    )


@dataclass
class InputCounts:
    """Every entry read lands in exactly one of these."""

    records: int = 0
    redis_selected: int = 0
    old_drained: int = 0
    other_events: int = 0
    malformed: int = 0
    not_cointoss: int = 0


@dataclass(frozen=True)
class RolloutSummary:
    rollout: str
    weight: float | None
    strategies: list[str]
    tasks: int
    decisions: int
    on_new: int
    on_old: int
    tossed: int
    tossed_new: int
    tossed_old: int
    expected_new: float | None
    interval_new: tuple[int, int] | None
    outside_interval: bool
    reasons: dict[str, int]
    old_after_drained: int
    old_after_drained_tasks: list[str]


@dataclass
class Report:
    counts: InputCounts = field(default_factory=InputCounts)
    old_drained_at: datetime | None = None
    rollouts: list[RolloutSummary] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "input": asdict(self.counts),
            "old_drained_at": self.old_drained_at.isoformat() if self.old_drained_at else None,
            "interval_level": LEVEL,
            "rollouts": [asdict(rollout) for rollout in self.rollouts],
        }


def build_report(entries: Iterable[Event | None]) -> Report:
    """Counts every entry, folds the usable choices per (rollout, weight)."""
    report = Report()
    counts = report.counts
    choices: list[Choice] = []
    drained: list[datetime] = []
    for index, entry in enumerate(entries):
        counts.records += 1
        if entry is None:
            counts.not_cointoss += 1
        elif entry.get("event") == SELECTED:
            choice = to_choice(index, normalise(entry))
            if choice is None:
                counts.malformed += 1
                continue
            counts.redis_selected += 1
            choices.append(choice)
            if choice.reason == DRAINED and choice.time:
                drained.append(choice.time)
        elif entry.get("event") == DRAINED:
            counts.old_drained += 1
            moment = with_time(entry)["_time"]
            if moment:
                drained.append(moment)
        else:
            counts.other_events += 1
    report.old_drained_at = min(drained, default=None)
    groups: dict[tuple[str, float | None], list[Choice]] = defaultdict(list)
    for choice in choices:
        groups[(choice.rollout, choice.weight)].append(choice)
    in_order = sorted(groups.values(), key=lambda group: min(c.order for c in group))
    report.rollouts = [summarise(group, report.old_drained_at) for group in in_order]
    return report


def summarise(choices: list[Choice], drained_at: datetime | None) -> RolloutSummary:
    """One rollout at one weight: sides now, the toss against its interval, reasons, late OLDs."""
    by_task: dict[str, list[Choice]] = defaultdict(list)
    for choice in sorted(choices, key=lambda c: c.order):
        by_task[choice.task].append(choice)
    latest = Counter(history[-1].side for history in by_task.values())
    tosses = [
        next((c for c in history if c.reason in TOSS_REASONS), None) for history in by_task.values()
    ]
    tossed = Counter(toss.side for toss in tosses if toss is not None)
    n = tossed["new"] + tossed["old"]
    weight = choices[0].weight
    interval = binomial_interval(n, weight) if weight is not None and n else None
    late = sorted(
        task
        for task, history in by_task.items()
        if drained_at and any(c.side == "old" and c.time and c.time > drained_at for c in history)
    )
    return RolloutSummary(
        rollout=choices[0].rollout,
        weight=weight,
        strategies=sorted({c.strategy for c in choices}),
        tasks=len(by_task),
        decisions=len(choices),
        on_new=latest["new"],
        on_old=latest["old"],
        tossed=n,
        tossed_new=tossed["new"],
        tossed_old=tossed["old"],
        expected_new=n * weight if weight is not None and n else None,
        interval_new=interval,
        outside_interval=bool(interval and not interval[0] <= tossed["new"] <= interval[1]),
        reasons=dict(sorted(Counter(c.reason for c in choices).items())),
        old_after_drained=len(late),
        old_after_drained_tasks=late,
    )


# --- input and output (the edges) -------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Summarise the fleet's redis_selected events per rollout: tasks per side, the split "
        "against the weight's 95% binomial interval, reasons, tasks that chose OLD after it was "
        "drained. Reads JSON lines, `aws logs filter-log-events` output or Logs Insights CSV."
    )
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="log files; stdin when none (or `-`)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")


def run(args: argparse.Namespace, _settings: None) -> int:
    """Exit 0 with a report (even an empty one); 66 when an input cannot be read."""
    report = build_report(
        entry for text in read_inputs(args.files or [STDIN]) for entry in iter_entries(text)
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_table(report)
    return 0


def read_inputs(names: list[str]) -> Iterator[str]:
    """Each input as text; bytes that are not UTF-8 become U+FFFD (that line is just not ours)."""
    for name in names:
        try:
            if name == STDIN:
                data = sys.stdin.buffer.read()
            else:
                with open(name, "rb") as handle:
                    data = handle.read()
        except OSError as exc:
            raise InputUnreadableError(
                f"report: cannot read {name}: {exc.strerror or exc}"
            ) from None
        yield data.decode("utf-8", errors="replace")


def print_table(report: Report) -> None:
    """The human view; rich is imported here so no other command pays for it."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    table = Table(title="cointoss report: redis_selected per rollout", title_justify="left")
    for column in ("rollout", "weight", "strategy", "tasks", "now NEW/OLD", "tossed", "NEW"):
        table.add_column(column, justify="left" if column in ("rollout", "strategy") else "right")
    table.add_column(f"expected NEW ({LEVEL:.0%} interval)", justify="right")
    table.add_column("split")
    table.add_column("OLD after drain", justify="right")
    table.add_column("reasons")
    for s in report.rollouts:
        table.add_row(
            s.rollout,
            "?" if s.weight is None else f"{s.weight:g}",
            ",".join(s.strategies),
            str(s.tasks),
            f"{s.on_new}/{s.on_old}",
            str(s.tossed),
            str(s.tossed_new),
            _expected(s),
            _verdict(s),
            str(s.old_after_drained),
            ", ".join(f"{reason} {count}" for reason, count in s.reasons.items()),
        )
    console.print(table)
    c = report.counts
    console.print(
        f"read {c.records} entries: {c.redis_selected} redis_selected, {c.old_drained} old_drained, "
        f"{c.other_events} other events, {c.malformed} malformed redis_selected, "
        f"{c.not_cointoss} not cointoss"
    )
    drained = report.old_drained_at.isoformat() if report.old_drained_at else "not seen"
    console.print(f"OLD known drained since: {drained}")
    for s in report.rollouts:
        if s.old_after_drained_tasks:
            shown = ", ".join(s.old_after_drained_tasks[:EXAMPLES_SHOWN])
            more = len(s.old_after_drained_tasks) - EXAMPLES_SHOWN
            console.print(
                f"{s.rollout}: chose OLD after drain: {shown}" + (f" (+{more})" if more > 0 else "")
            )


def _expected(s: RolloutSummary) -> str:
    if s.expected_new is None or s.interval_new is None:
        return "-"
    return f"{s.expected_new:.1f} ({s.interval_new[0]}-{s.interval_new[1]})"


def _verdict(s: RolloutSummary) -> str:
    if s.interval_new is None:
        return "-"
    return "OUTSIDE" if s.outside_interval else "ok"
