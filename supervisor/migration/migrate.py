"""`cointoss migrate`: the operator's handle on the mover: options, a bar or events, a summary."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from supervisor.errors import DataError
from supervisor.layouts import get_layout
from supervisor.logs import get_logger
from supervisor.migration.mover import DEFAULT_BATCH, MoveReport, Progress, run_move
from supervisor.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only",
        type=_only,
        default=None,
        metavar="KEYS",
        help="comma-separated; Sidekiq: schedule,retry,dead,queues (default schedule,retry);"
        " RQ: scheduled,queues,failed (default scheduled); Celery: queues,unacked (default"
        " queues);"
        " queue lists move only when asked, since workers on OLD may still drain them",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        metavar="N",
        help=f"members per claim (default {DEFAULT_BATCH})",
    )
    parser.add_argument(
        "--due-within",
        type=float,
        metavar="SECONDS",
        help="move only scheduled/retry/dead members due within SECONDS from now",
    )
    parser.add_argument(
        "--follow",
        action="store_true",
        help="keep moving until OLD's keys stay empty and no job runs on OLD",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would move; change nothing"
    )
    parser.add_argument(
        "--wait-replicas",
        type=int,
        default=0,
        metavar="N",
        help="WAIT for N replicas of NEW before each batch leaves OLD's journal",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Moves, prints the summary on stdout; exit 65 if a key of the wrong type was left alone."""
    log = get_logger(command="migrate")
    with _progress_bar(enabled=sys.stderr.isatty() and not args.dry_run) as progress:
        report = run_move(
            settings,
            only=args.only,
            batch=args.batch,
            due_within_s=args.due_within,
            follow=args.follow,
            dry_run=args.dry_run,
            wait_replicas=args.wait_replicas,
            log=log,
            progress=progress,
        )
    print(json.dumps(_as_dict(report)) if args.json else summary(report))
    if report.skipped:
        layout = get_layout(settings)
        raise DataError(
            f"left alone, holding another type than {layout.title if layout else 'the'}'s:"
            f" {', '.join(report.skipped)};"
            " everything else moved"
        )
    return 0


def summary(report: MoveReport) -> str:
    """The human summary: one line per key, then the total."""
    verb = "would move" if report.dry_run else "moved"
    journals = "found" if report.dry_run else "replayed"
    width = max([len(label) for label in report.moved] + [5])
    lines = [f"  {label:<{width}}  {count:>10,}" for label, count in sorted(report.moved.items())]
    lines.append(f"  {'total':<{width}}  {report.total:>10,}")
    head = f"cointoss migrate: {verb} {report.total:,} item(s) from OLD to NEW"
    tail = [f"journals {journals}: {report.replayed_batches}"]
    if report.skipped:
        tail.append(f"left alone (wrong type): {', '.join(report.skipped)}")
    tail += [f"not moved: {reason}" for reason in report.refused]
    return "\n".join([head, *lines, *tail])


def _as_dict(report: MoveReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "moved": report.moved,
        "total": report.total,
        "replayed_batches": report.replayed_batches,
        "skipped": list(report.skipped),
        **({"refused": list(report.refused)} if report.refused else {}),
    }


def _only(raw: str) -> frozenset[str]:
    """Names only; the layout checks them (each system has its own keys)."""
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("nothing is not accepted; accepted: key names")
    return names


@contextmanager
def _progress_bar(*, enabled: bool) -> Iterator[Progress | None]:
    """A rich bar on stderr when it is a terminal; otherwise the mover logs migrate_progress."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("migrate", total=None)

    def advance(label: str, moved: int, expected: int) -> None:
        bar.update(task, completed=moved, total=expected, description=label)

    with bar:
        yield advance
