"""`cointoss status`: OLD and NEW side by side, and the one-word answer to "can OLD go yet?"."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from supervisor import constants as k
from supervisor.connections import redis_errors
from supervisor.layouts.sidekiq.backlog import Backlog, ProcessInfo, read_backlog, read_processes
from supervisor.layouts.sidekiq.heartbeats import ghosts, read_heartbeats
from supervisor.layouts.sidekiq.timestamps import job_stamp
from supervisor.migration.mover import connect, failure, require_old_url
from supervisor.redact import redact_text, url_host
from supervisor.servers.facts import ServerFacts, read_facts
from supervisor.servers.refusals import diagnose, is_refusal, read_only_error
from supervisor.servers.report import server_warnings
from supervisor.servers.sidekiq_needs import sidekiq_majors
from supervisor.settings import Settings, env_name

if TYPE_CHECKING:
    import redis

DEFAULT_WATCH_S = 2.0  # `--watch` without a number

DRAINING = "draining"
ONLY_SCHEDULED = "only scheduled/retry left: run cointoss migrate"
DRAINED = "drained"
RETIRABLE = "retirable"

Side = tuple[str, str, "redis.Redis"]  # (role, URL, connected client)


@dataclass(frozen=True)
class KeyStatus:
    """Length of one queue or set, and how old its oldest job is (None when unknown)."""

    size: int
    oldest_age_s: float | None = None
    next_due_in_s: float | None = None  # schedule/retry: lowest score minus now (<0 = overdue)


@dataclass(frozen=True)
class Ghost:
    """A heartbeat hash without TTL whose process stopped beating long ago (see heartbeats.py)."""

    identity: str
    busy: int
    last_beat_age_s: float


@dataclass(frozen=True)
class SideStatus:
    """Everything `status` shows about one Redis."""

    role: str
    host: str
    backlog: Backlog
    queues: dict[str, KeyStatus] = field(default_factory=dict)
    private_lists: dict[str, KeyStatus] = field(default_factory=dict)
    sets: dict[str, KeyStatus] = field(default_factory=dict)
    processes: list[ProcessInfo] = field(default_factory=list)
    ghosts: list[Ghost] = field(default_factory=list)
    cluster: bool = False
    maxmemory_policy: str | None = None
    error: str | None = None  # why the keys could not be read (cluster mode), if so
    facts: ServerFacts = field(default_factory=ServerFacts)
    sidekiq: set[int] = field(default_factory=set)  # Sidekiq majors its heartbeats carry


def verdict(old: Backlog) -> str:
    """DESIGN's four states, from OLD's backlog alone (NEW never blocks retiring OLD)."""
    if old.drained:
        return RETIRABLE if old.live_processes == 0 else DRAINED
    if old.complete and old.queued == 0 and old.busy == 0:
        return ONLY_SCHEDULED
    return DRAINING


def warnings(side: SideStatus) -> list[str]:
    """What would break Sidekiq on this server, or leave it short of what it reads."""
    found = []
    if side.cluster:
        found.append(f"{side.role} runs in cluster mode: Sidekiq cannot use Redis Cluster")
    if side.maxmemory_policy not in (None, "noeviction"):
        found.append(
            f"{side.role} has maxmemory-policy {side.maxmemory_policy}: Redis may evict jobs;"
            " use noeviction"
        )
    if side.error:
        found.append(f"{side.role}: could not read the keys ({side.error})")
    found += [
        f"{side.role} key {key!r} holds another type than Sidekiq's: fix or delete it"
        for key in side.backlog.wrong_type
    ]
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
    """Exit 0 when OLD is drained, 1 when not; 69 when either Redis cannot be reached, 75 when
    NEW is a read-only replica, 78 when a server refuses a command."""
    old_url = require_old_url(settings, "status")
    sides: list[Side] = [
        ("OLD", old_url, connect("OLD", old_url)),
        ("NEW", settings.new_redis_url, connect("NEW", settings.new_redis_url)),
    ]
    if args.watch is None:
        result = look(sides, settings.key_prefix)
        _show(result, as_json=args.json, compact=False)
        return 0 if result["drained"] else 1
    return _watch(sides, settings.key_prefix, args)


def look(sides: list[Side], prefix: str, now: float | None = None) -> dict[str, Any]:
    """One look at both sides, as the JSON document `--json` prints."""
    now = time.time() if now is None else now
    old, new = (read_side(role, url, client, prefix, now) for role, url, client in sides)
    if new.facts.read_only:
        raise read_only_error("NEW", sides[1][1], env_name("new_redis_url"))
    return {
        "verdict": verdict(old.backlog),
        "drained": old.backlog.drained,
        "old": _side_dict(old),
        "new": _side_dict(new),
        "warnings": warnings(old)
        + warnings(new)
        + server_warnings(old.facts, new.facts, old.sidekiq | new.sidekiq),
        "timestamp": now,
    }


def read_side(role: str, url: str, client: redis.Redis, prefix: str, now: float) -> SideStatus:
    """One side, or why it could not be read; a lost connection is exit 69, never a guess."""
    import redis

    try:
        facts = read_facts(client)
        try:
            side = _read_keys(role, url, client, prefix, now, facts)
            sidekiq = sidekiq_majors(client, prefix)
        except redis.ResponseError as exc:  # CLUSTERDOWN, MOVED...: report, don't crash
            if is_refusal(exc):
                raise
            side = SideStatus(
                role=role,
                host=url_host(url),
                backlog=Backlog(complete=False),
                error=diagnose(exc).describe(),
            )
            sidekiq = set()
        return replace(
            side,
            cluster=facts.cluster,
            maxmemory_policy=facts.maxmemory_policy,
            facts=facts,
            sidekiq=sidekiq,
        )
    except redis_errors() as exc:
        raise failure(role, url, exc) from None


def _read_keys(
    role: str,
    url: str,
    client: redis.Redis,
    prefix: str,
    now: float,
    facts: ServerFacts,
) -> SideStatus:
    """Counts from `read_backlog`, plus ages, consumers and server settings for the table."""
    backlog = read_backlog(client, prefix, now)
    names = list(backlog.queues)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.lindex(k.queue_key(prefix, name), -1)  # the consuming end: the oldest job
    for key in (k.SCHEDULE, k.RETRY, k.DEAD):
        pipe.zrange(prefix + key, 0, 0, withscores=True)
    replies = pipe.execute(raise_on_error=False)
    lists = {
        name: KeyStatus(backlog.queues[name], _job_age(reply, now))
        for name, reply in zip(names, replies, strict=False)
    }
    sets = {
        key: _set_status(key, getattr(backlog, key), reply, now)
        for key, reply in zip((k.SCHEDULE, k.RETRY, k.DEAD), replies[len(names) :], strict=True)
    }
    return SideStatus(
        role=role,
        host=url_host(url),
        backlog=backlog,
        queues={n: s for n, s in lists.items() if not n.startswith(k.PRIVATE_QUEUE_MARK)},
        private_lists={n: s for n, s in lists.items() if n.startswith(k.PRIVATE_QUEUE_MARK)},
        sets=sets,
        processes=read_processes(client, prefix, now),
        ghosts=[
            Ghost(g.identity, g.busy, _round(g.beat_age_s(now)) or 0.0)
            for g in ghosts(read_heartbeats(client, prefix), now)
        ],
    )


def _set_status(key: str, size: int, reply: Any, now: float) -> KeyStatus:
    if not isinstance(reply, list) or not reply:
        return KeyStatus(size)
    member, score = reply[0]
    age = now - score if key == k.DEAD else _job_age(member, now, field="created_at")
    due = None if key == k.DEAD else score - now
    return KeyStatus(size, _round(age), _round(due))


def _job_age(raw: Any, now: float, field: str = "enqueued_at") -> float | None:
    """Age from the job's `field` (else `created_at`), read as Sidekiq 8 reads either form; a
    member that is not JSON has no age."""
    if not isinstance(raw, bytes | str):
        return None
    stamp = job_stamp(raw, field, "created_at")
    return None if stamp is None else _round(now - stamp)


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 3)


def _side_dict(side: SideStatus) -> dict[str, Any]:
    return {
        "host": side.host,
        "queues": {name: asdict(s) for name, s in sorted(side.queues.items())},
        "private_lists": {name: asdict(s) for name, s in sorted(side.private_lists.items())},
        **{key: asdict(s) for key, s in side.sets.items()},
        "processes": [asdict(p) for p in side.processes],
        "ghosts": [asdict(g) for g in side.ghosts],
        "live_processes": side.backlog.live_processes,
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


def _watch(sides: list[Side], prefix: str, args: argparse.Namespace) -> int:
    """Refreshes until interrupted; a live table on a terminal, one JSON line per look otherwise."""
    if sys.stdout.isatty() and not args.json:
        from rich.live import Live

        with Live(render(look(sides, prefix)), auto_refresh=False) as live:
            while True:
                time.sleep(args.watch)
                live.update(render(look(sides, prefix)), refresh=True)
    while True:
        _show(look(sides, prefix), as_json=args.json, compact=True)
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
    for key in (k.SCHEDULE, k.RETRY, k.DEAD):
        table.add_row(key, _cell(old[key]), _cell(new[key]))
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
