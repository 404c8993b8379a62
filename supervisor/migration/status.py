"""`cointoss status`: OLD and NEW side by side, and the one-word answer to "can OLD go yet?"."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from supervisor.connections import redis_errors
from supervisor.layouts import get_layout
from supervisor.layouts.base import Backlog, Consumer, Ghost, KeyStatus, Layout, Note, View
from supervisor.layouts.sidekiq.layout import SidekiqLayout
from supervisor.layouts.sidekiq.server_needs import sidekiq_majors, version_warning
from supervisor.migration.mover import connect, failure, require_distinct, require_old_url
from supervisor.redact import redact_text, url_host
from supervisor.servers.facts import ServerFacts, read_facts
from supervisor.servers.refusals import diagnose, is_refusal, read_only_error
from supervisor.servers.report import server_warnings
from supervisor.settings import Settings, env_name

if TYPE_CHECKING:
    import redis

DEFAULT_WATCH_S = 2.0  # `--watch` without a number

DRAINING = "draining"
ONLY_SCHEDULED = "only scheduled/retry left: run cointoss migrate"
DRAINED = "drained"
RETIRABLE = "retirable"
UNPROVEN = "empty, but running work is invisible in Redis"

Side = tuple[str, str, "redis.Redis"]  # (role, URL, connected client)


@dataclass(frozen=True)
class SideStatus:
    """Everything `status` shows about one Redis."""

    role: str
    host: str
    backlog: Backlog
    system: str = "Sidekiq"  # the layout's title, for warnings
    queues: dict[str, KeyStatus] = field(default_factory=dict)
    private_lists: dict[str, KeyStatus] = field(default_factory=dict)
    sets: dict[str, KeyStatus] = field(default_factory=dict)
    processes: list[Consumer] = field(default_factory=list)
    ghosts: list[Ghost] = field(default_factory=list)
    notes: tuple[Note, ...] = ()
    cluster: bool = False
    maxmemory_policy: str | None = None
    error: str | None = None  # why the keys could not be read (cluster mode), if so
    facts: ServerFacts = field(default_factory=ServerFacts)
    sidekiq: set[int] = field(default_factory=set)  # Sidekiq majors its heartbeats carry


def verdict(old: Backlog) -> str:
    """The four rollout states (draining, only scheduled/retry, drained, retirable), from OLD's
    backlog alone (NEW never blocks retiring OLD), and a fifth where Redis cannot show that
    nothing runs (the backlog says why, in a warning)."""
    if old.drained:
        if old.unproven:
            return UNPROVEN
        return RETIRABLE if old.live_processes == 0 else DRAINED
    if old.complete and old.queued == 0 and old.busy == 0 and not sum(old.held.values()):
        return ONLY_SCHEDULED
    return DRAINING


def warnings(side: SideStatus) -> list[str]:
    """What would break the queue system on this server, or leave it short of what it reads."""
    found = []
    if side.cluster:
        found.append(f"{side.role} runs in cluster mode: {side.system} cannot use Redis Cluster")
    if side.maxmemory_policy not in (None, "noeviction"):
        found.append(
            f"{side.role} has maxmemory-policy {side.maxmemory_policy}: Redis may evict jobs;"
            " use noeviction"
        )
    if side.error:
        found.append(f"{side.role}: could not read the keys ({side.error})")
    found += [
        f"{side.role} key {key!r} holds another type than {side.system}'s: fix or delete it"
        for key in side.backlog.wrong_type
    ]
    found += [f"{side.role}: {note.text}" for note in side.notes if side.role in note.on]
    if side.role == "OLD" and side.backlog.drained and side.backlog.unproven:
        found.append(f"OLD: queues are empty, but {side.backlog.unproven}")
    if side.backlog.moving_batches:
        found.append(
            f"{side.role} holds {side.backlog.moving} jobs in {side.backlog.moving_batches}"
            " journals of cointoss migrate (a run in progress, or one that was killed):"
            " run cointoss migrate to finish moving them; they are on neither side's queues"
        )
    found += [
        f"{side.role} process {ghost.identity} is dead but its heartbeat has no expiry (last beat"
        f" {_duration(ghost.last_beat_age_s)} ago, busy {ghost.busy}): not counted as live or"
        f" busy; delete its hash and remove it from the processes set"
        for ghost in side.ghosts
    ]
    if not side.backlog.complete and not side.backlog.wrong_type and not side.error:
        found.append(f"{side.role}: the key scan was cut short; counts may be incomplete")
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument(
        "--watch",
        type=_seconds,
        nargs="?",
        const=DEFAULT_WATCH_S,
        metavar="SECONDS",
        help=f"refresh every SECONDS (default {DEFAULT_WATCH_S:g}) until Ctrl-C, which exits 130",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when OLD is drained, 1 when not; 69 when either Redis cannot be reached."""
    old_url = require_old_url(settings, "status")
    layout = get_layout(settings)
    assert layout is not None  # require_old_url
    sides: list[Side] = [
        ("OLD", old_url, connect("OLD", old_url)),
        ("NEW", settings.new_redis_url, connect("NEW", settings.new_redis_url)),
    ]
    (_, _, old), (_, new_url, new) = sides
    require_distinct(old_url, old, new_url, new, best_effort=True)
    if args.watch is None:
        result = look(sides, layout)
        _show(result, as_json=args.json, compact=False)
        return 0 if result["drained"] else 1
    return _watch(sides, layout, args)


def look(sides: list[Side], layout: Layout, now: float | None = None) -> dict[str, Any]:
    """One look at both sides, as the JSON document `--json` prints."""
    now = time.time() if now is None else now
    old, new = (read_side(role, url, client, layout, now) for role, url, client in sides)
    if new.facts.read_only:
        raise read_only_error("NEW", sides[1][1], env_name("new_redis_url"))
    return {
        "verdict": verdict(old.backlog),
        "drained": old.backlog.provably_drained,
        "layout": layout.name,
        "old": _side_dict(old),
        "new": _side_dict(new),
        "sets": list(dict.fromkeys([*old.sets, *new.sets])),  # the table's rows, in order
        "warnings": warnings(old)
        + warnings(new)
        + server_warnings(old.facts, new.facts)
        + _too_old(new, old.sidekiq | new.sidekiq),
        "timestamp": now,
    }


def _too_old(new: SideStatus, sidekiq: set[int]) -> list[str]:
    found = version_warning("NEW", new.facts.engine, new.facts.version, sidekiq)
    return [found] if found else []


def read_side(role: str, url: str, client: redis.Redis, layout: Layout, now: float) -> SideStatus:
    """One side, or why it could not be read; a lost connection is exit 69, never a guess."""
    import redis

    try:
        facts = read_facts(client)
        try:
            view = layout.read_view(client, now)
            sidekiq = (
                sidekiq_majors(client, layout.prefix)
                if isinstance(layout, SidekiqLayout)
                else set()
            )
        except redis.ResponseError as exc:  # CLUSTERDOWN, MOVED...: report, don't crash
            if is_refusal(exc):
                raise
            return SideStatus(
                role=role,
                host=url_host(url),
                backlog=Backlog(complete=False),
                system=layout.title,
                cluster=facts.cluster,
                maxmemory_policy=facts.maxmemory_policy,
                error=diagnose(exc).describe(),
                facts=facts,
            )
    except redis_errors() as exc:
        raise failure(role, url, exc) from None
    return replace(_side(role, url, layout.title, view, facts), sidekiq=sidekiq)


def _side(role: str, url: str, system: str, view: View, facts: ServerFacts) -> SideStatus:
    return SideStatus(
        role=role,
        host=url_host(url),
        backlog=view.backlog,
        system=system,
        queues=view.queues,
        private_lists=view.private_lists,
        sets=view.sets,
        processes=view.processes,
        ghosts=view.ghosts,
        notes=view.notes,
        cluster=facts.cluster,
        maxmemory_policy=facts.maxmemory_policy,
        facts=facts,
    )


def _side_dict(side: SideStatus) -> dict[str, Any]:
    return {
        "host": side.host,
        "queues": {name: asdict(s) for name, s in sorted(side.queues.items())},
        "private_lists": {name: asdict(s) for name, s in sorted(side.private_lists.items())},
        **{key: asdict(s) for key, s in side.sets.items()},
        "processes": [
            {"identity": p.identity, "busy": p.busy, "quiet": p.quiet} for p in side.processes
        ],
        "ghosts": [asdict(g) for g in side.ghosts],
        "live_processes": side.backlog.live_processes,
        "held": side.backlog.held,
        "unproven": side.backlog.unproven,
        "busy": side.backlog.busy,
        "moving": side.backlog.moving,
        "moving_batches": side.backlog.moving_batches,
        "drained": side.backlog.drained,
        "complete": side.backlog.complete,
        "wrong_type": list(side.backlog.wrong_type),
        "cluster": side.cluster,
        "maxmemory_policy": side.maxmemory_policy,
        "server": side.facts.engine,
        "version": side.facts.version,
        "role": side.facts.role,
        "error": side.error,
    }


def _watch(sides: list[Side], layout: Layout, args: argparse.Namespace) -> int:
    """Refreshes until interrupted; a live table on a terminal, one JSON line per look otherwise."""
    if sys.stdout.isatty() and not args.json:
        from rich.live import Live

        with Live(render(look(sides, layout)), auto_refresh=False) as live:
            while True:
                time.sleep(args.watch)
                live.update(render(look(sides, layout)), refresh=True)
    while True:
        _show(look(sides, layout), as_json=args.json, compact=True)
        sys.stdout.flush()
        time.sleep(args.watch)


def _show(result: dict[str, Any], *, as_json: bool, compact: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=None if compact else 2))
        return
    from rich.console import Console

    Console(soft_wrap=True).print(render(result))


def render(result: dict[str, Any]) -> Any:
    """The table a human reads: one row per key, OLD and NEW side by side, verdict underneath."""
    from rich.console import Group, RenderableType
    from rich.table import Table
    from rich.text import Text

    old, new = result["old"], result["new"]
    table = Table(title="cointoss status", title_justify="left")
    table.add_column("")
    table.add_column(f"OLD {old['host']}", justify="right")
    table.add_column(f"NEW {new['host']}", justify="right")
    for name in sorted(set(old["queues"]) | set(new["queues"])):
        cells = [_cell(side["queues"].get(name)) for side in (old, new)]
        table.add_row(f"queue:{name}", *cells)
    for key in result["sets"]:
        table.add_row(key, _cell(old.get(key)), _cell(new.get(key)))
    for name in sorted(set(old["private_lists"]) | set(new["private_lists"])):
        cells = [_cell(side["private_lists"].get(name)) for side in (old, new)]
        table.add_row(f"queue:{name}", *cells)
    if old["moving_batches"]:
        table.add_row(
            "being moved (journals)", f"{old['moving']} in {old['moving_batches']} batches", ""
        )
    table.add_row("live consumers", str(old["live_processes"]), str(new["live_processes"]))
    table.add_row("busy", str(old["busy"]), str(new["busy"]))
    table.add_row("quiet", *(str(sum(p["quiet"] for p in s["processes"])) for s in (old, new)))
    lines: list[RenderableType] = [table, Text(f"verdict: {result['verdict']}", style="bold")]
    lines += [Text(f"warning: {redact_text(w)}", style="yellow") for w in result["warnings"]]
    return Group(*lines)


def _cell(status: dict[str, Any] | None) -> str:
    if not status:
        return "-"
    age = status.get("oldest_age_s")
    return f"{status['size']:,}" + (f" ({_duration(age)} old)" if age is not None else "")


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{raw!r} is out of range; accepted: seconds above 0")
    return value
