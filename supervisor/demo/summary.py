"""The demo's verdict, computed from the ground truth: the `RecordJob` ledgers on both Redis.

Pure arithmetic and formatting: ledgers, task choices and timings in, a JSON-able summary out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from supervisor.demo.rollout_plan import expected_new
from supervisor.toss.decide import Strategy

SAMPLE_JIDS = 20  # how many lost/duplicate jids the summary lists by name
COIN_REASONS = frozenset({"coin", "even_sequence"})


@dataclass(frozen=True)
class JobTally:
    """Every expected job against the two ledgers (jid -> number of runs on that Redis)."""

    expected: int
    processed_on_old: int  # distinct jids in OLD's ledger
    processed_on_new: int
    runs_on_old: int  # sum of OLD's ledger counts
    runs_on_new: int
    lost: int  # expected jids in neither ledger
    duplicates: int  # jids that ran more than once in total
    unexpected: int  # ledger jids the demo never pushed
    lost_jids: tuple[str, ...]
    duplicate_jids: tuple[str, ...]


def tally_jobs(
    expected: Iterable[str], old_ledger: Mapping[str, int], new_ledger: Mapping[str, int]
) -> JobTally:
    expected_set = set(expected)
    runs = Counter(old_ledger)
    runs.update(new_ledger)
    lost = sorted(expected_set - runs.keys())
    duplicates = sorted(jid for jid, count in runs.items() if count > 1)
    return JobTally(
        expected=len(expected_set),
        processed_on_old=len(old_ledger),
        processed_on_new=len(new_ledger),
        runs_on_old=sum(old_ledger.values()),
        runs_on_new=sum(new_ledger.values()),
        lost=len(lost),
        duplicates=len(duplicates),
        unexpected=len(runs.keys() - expected_set),
        lost_jids=tuple(lost[:SAMPLE_JIDS]),
        duplicate_jids=tuple(duplicates[:SAMPLE_JIDS]),
    )


@dataclass(frozen=True)
class TaskChoice:
    """What one task chose at start-up (None: it died before saying) and where it ended."""

    first_side: str | None
    first_reason: str | None
    last_side: str | None


def deployment_split(
    revision: int, weight: float, strategy: Strategy, choices: Iterable[TaskChoice]
) -> dict[str, Any]:
    """Expected vs observed sides for one revision's tasks, and whether the coin starved a side.

    `expected` applies the weight to every task; `observed` is what their `redis_selected`
    said. Reasons show why they differ (`old_drained` overrides the coin, by design).
    """
    choices = list(choices)
    tasks = len(choices)
    new = expected_new(strategy, weight, tasks)
    observed = Counter(choice.first_side or "unknown" for choice in choices)
    reasons = Counter(choice.first_reason or "unknown" for choice in choices)
    # Only a toss can starve a side: a row with any override (old_drained...) is the design working.
    tossed = (
        bool(choices) and 0 < weight < 1 and all(c.first_reason in COIN_REASONS for c in choices)
    )
    starved = [side for side in ("old", "new") if tossed and observed[side] == 0]
    return {
        "revision": revision,
        "weight": weight,
        "tasks": tasks,
        "expected": {"new": round(new, 2), "old": round(tasks - new, 2)},
        "observed": {side: observed.get(side, 0) for side in ("new", "old", "unknown")},
        "reasons": dict(sorted(reasons.items())),
        "switched_to_new": sum(
            1 for c in choices if c.first_side == "old" and c.last_side == "new"
        ),
        "side_without_consumers": starved[0] if starved else None,
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """The screen version of summary.json: one line per deployment, then the verdict."""
    jobs = summary["jobs"]
    lines = [
        f"cointoss demo: {summary['tasks']} tasks, strategy {summary['strategy']},"
        f" mode {summary['mode']}, {summary['elapsed_s']:.1f} s",
        "",
        "deployment  weight  tasks  NEW exp/obs  OLD exp/obs  reasons",
    ]
    for row in summary["deployments"]:
        exp, obs = row["expected"], row["observed"]
        reasons = ", ".join(f"{name} {count}" for name, count in row["reasons"].items())
        note = (
            f"  <- no consumer on {row['side_without_consumers'].upper()} by the coin"
            if row["side_without_consumers"]
            else ""
        )
        extra = f" ({row['why']})" if row.get("why") else ""
        if row.get("switched_to_new"):
            extra += f", {row['switched_to_new']} switched to NEW when OLD drained"
        lines.append(
            f"rev {row['revision']:<7} {row['weight']:<7.2f} {row['tasks']:<6}"
            f" {_exp(exp['new'])}/{obs['new']:<6} {_exp(exp['old'])}/{obs['old']:<6}"
            f" {reasons}{extra}{note}"
        )
    drained = summary["old_drained_after_s"]
    lines += [
        "",
        f"OLD drained after: {'never' if drained is None else f'{drained:.1f} s'}"
        f"   mover runs: {summary['mover']['runs']} (moved {summary['mover']['moved']})"
        f"   kills: {summary['kills']}",
        f"jobs: expected {jobs['expected']}  processed on OLD {jobs['processed_on_old']}"
        f"  on NEW {jobs['processed_on_new']}",
        f"lost: {jobs['lost']}   duplicates: {jobs['duplicates']}"
        f"   unexpected: {jobs['unexpected']}",
    ]
    return "\n".join(lines)


def _exp(value: float) -> str:
    return f"{value:g}".rjust(4)
