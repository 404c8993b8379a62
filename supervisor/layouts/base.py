"""The contract between a queue system and everything above it (toss, supervise, status, mover).

A layout answers, from one Redis alone: what is still to do there (`read_backlog`, with a way
to say "cannot be proven" instead of "drained"), who consumes it (`consumers`), what `status`
shows (`read_view`), which keys may move while OLD's consumers still run and with which atomic
claim (`sources`, each naming a `Unit`), and what must never move and why (`refusals`).

The mover's crash-safety protocol is not the layout's business: every unit's claim script
writes the same journal on OLD (numbered from OLD's counter), every apply script checks and
writes the same marker on NEW, and the mover acks by deleting the journal. A unit only decides
what one item is (a member, a list element, an RQ id with its job hash) and how it is taken.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from supervisor import constants as k

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True)
class Backlog:
    """One look at a Redis's queue keys; `complete` is False when a scan was cut short.

    `queues` are lists consumers take from now; `waiting` are sorted sets released later that
    `cointoss migrate` moves (Sidekiq's schedule/retry, RQ's scheduled); `held` is work taken by
    a consumer or blocked, which nobody may move (RQ's in-flight and deferred jobs, Celery's
    unacked messages); `terminal` is reported and never blocks (dead, failed). `unproven` says
    why Redis alone cannot show that nothing runs (Celery with early ack): then OLD is never
    reported retirable, only empty.
    """

    queues: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    terminal: dict[str, int] = field(default_factory=dict)
    live_processes: int = 0
    busy: int = 0
    complete: bool = True
    wrong_type: tuple[str, ...] = ()  # keys that hold another type: never "drained" past them
    moving: int = 0  # items in journals: claimed from OLD by a mover, not yet acknowledged
    moving_batches: int = 0  # journals; `cointoss migrate` replays them
    unproven: str = ""
    heartbeats: tuple[Consumer, ...] = ()  # the live consumers, for QuietSpan

    @property
    def queued(self) -> int:
        return sum(self.queues.values())

    @property
    def scheduled(self) -> int:
        """Everything `cointoss migrate` moves by default (the `waiting` sets)."""
        return sum(self.waiting.values())

    @property
    def drained(self) -> bool:
        """Nothing left that Redis shows: what a worker's restart onto NEW waits for.

        A warm shutdown lets running work finish, so `unproven` does not hold a worker back.
        """
        return (
            self.complete
            and self.queued == 0
            and self.scheduled == 0
            and sum(self.held.values()) == 0
            and self.busy == 0
            and self.moving_batches == 0
        )

    @property
    def provably_drained(self) -> bool:
        """Drained, and the system lets Redis show that nothing runs: OLD may be retired."""
        return self.drained and not self.unproven


BEATS_PER_DECISION = 2


@dataclass(frozen=True)
class Consumer:
    """One live consumer process as the layout sees it.

    `beat` and `period_s` say how fresh `busy` is: a Sidekiq process reports `busy` with each
    beat, so it lags up to one period behind; a consumer whose state is written as it changes
    (RQ's `state`) or that shows none has no beat and period 0, and is believed at once.
    """

    identity: str
    busy: int
    quiet: bool = False
    beat: float | None = None  # epoch seconds of its last beat, when it beats
    period_s: float = 0.0


@dataclass(frozen=True)
class QuietSpan:
    """Quiet looks in a row, and whether they span two beats of every live process.

    A process's beats are counted from its `beat` changing between looks, so the span follows
    what each process really does (a Sidekiq 6.x, a 7.x/8.x, or a worker with a shortened
    interval); one whose beat cannot be read waits two of its periods instead, and a consumer
    with no beat and period 0 (RQ, Celery) delays nothing.
    """

    started: float | None = None  # the caller's clock at the first quiet look
    beats: dict[str, tuple[float | None, int]] = field(default_factory=dict)  # id: last, seen
    unreadable_s: float = 0.0  # the longest period of a process without a readable beat

    def observe(self, quiet: bool, heartbeats: Iterable[Consumer], now: float) -> QuietSpan:
        """The span after one more look; any activity starts over."""
        if not quiet:
            return QuietSpan()
        beats: dict[str, tuple[float | None, int]] = {}
        unreadable_s = self.unreadable_s
        for heartbeat in heartbeats:
            last, seen = self.beats.get(heartbeat.identity, (heartbeat.beat, 0))
            if heartbeat.beat is None:
                unreadable_s = max(unreadable_s, heartbeat.period_s)
            beats[heartbeat.identity] = (
                heartbeat.beat,
                seen + (heartbeat.beat is not None and heartbeat.beat != last),
            )
        return QuietSpan(now if self.started is None else self.started, beats, unreadable_s)

    def covers(self, now: float) -> bool:
        """Every live process beat twice since the first quiet look (and the unreadable ones
        had two periods' time)."""
        if self.started is None:
            return False
        return all(
            seen >= BEATS_PER_DECISION for last, seen in self.beats.values() if last is not None
        ) and (now - self.started >= BEATS_PER_DECISION * self.unreadable_s)


@dataclass(frozen=True)
class KeyStatus:
    """Length of one queue or set, and how old its oldest job is (None when unknown)."""

    size: int
    oldest_age_s: float | None = None
    next_due_in_s: float | None = None  # due-later sets: lowest score minus now (<0 = overdue)


@dataclass(frozen=True)
class Ghost:
    """A consumer that is dead for sure but still registered (a heartbeat that never expires)."""

    identity: str
    busy: int
    last_beat_age_s: float


@dataclass(frozen=True)
class View:
    """What `cointoss status` shows about one side, besides the server's own facts."""

    backlog: Backlog
    queues: dict[str, KeyStatus] = field(default_factory=dict)
    private_lists: dict[str, KeyStatus] = field(default_factory=dict)  # in flight, per consumer
    sets: dict[str, KeyStatus] = field(default_factory=dict)  # waiting, held and terminal keys
    processes: list[Consumer] = field(default_factory=list)
    ghosts: list[Ghost] = field(default_factory=list)
    notes: tuple[str, ...] = ()  # layout-specific warnings (traps the reference lists)


@dataclass(frozen=True)
class Unit:
    """One kind of movable item: its Lua claim on OLD and its Lua apply on NEW.

    The journal's `kind` field names the unit, so a journal left by a killed mover is replayed
    by its own apply script. Claim KEYS are (source, journal, sequence, *Source.claim_keys);
    ARGV is (limit, [max score if `scored`], max bytes, claimed_at, *Source.claim_args). Apply
    KEYS are (destination, applied marker, queues set); ARGV is (batch id, kind, items, queue,
    now, marker TTL, iterable states, job prefix). A claim may return a third element, state
    that travels with the batch (the journal's `states`).
    """

    kind: str
    redis_type: str  # what the source key must be on both sides: "zset" or "list"
    scored: bool  # the claim takes a max score (sorted sets) or not (lists)
    claim_lua: str
    apply_lua: str


@dataclass(frozen=True)
class Source:
    """One key to empty: the same name on OLD and NEW."""

    key: str
    label: str  # the key as reports show it (without a namespace prefix)
    unit: Unit
    queues: str = ""  # the set NEW must register `queue` in ("" when the system has none)
    queue: str = ""
    job_prefix: str = ""  # units whose items carry a job hash: its key prefix
    claim_keys: tuple[str, ...] = ()
    claim_args: tuple[str | int | float, ...] = ()
    # How many items a claim could take now, when that is not the key's length or its members
    # up to the max score (Celery's unacked: only those past the visibility timeout).
    count: Callable[[redis.Redis], int] | None = None


class Layout(ABC):
    """A queue system's keys on one Redis. Subclasses live in `layouts/<name>/`."""

    name: ClassVar[str]  # the value of MIGRATION_QUEUE_LAYOUT
    title: ClassVar[str]  # the system's name in messages
    kinds: ClassVar[tuple[str, ...]]  # what `migrate --only` accepts, in moving order
    default_kinds: ClassVar[frozenset[str]]  # what `migrate` moves without --only
    auto_kinds: ClassVar[frozenset[str]]  # what auto-migrate moves; empty turns it off
    units: ClassVar[tuple[Unit, ...]]

    @abstractmethod
    def read_backlog(self, client: redis.Redis) -> Backlog:
        """Counts everything that keeps this Redis from being drained."""

    @abstractmethod
    def consumers(self, client: redis.Redis, now: float | None = None) -> list[Consumer]:
        """Live consumers; `busy` is what each is running now (as far as Redis shows). `now`
        is the caller's clock (None: this host's), for layouts that judge beats by age."""

    @abstractmethod
    def sources(self, client: redis.Redis, kinds: list[str]) -> list[Source]:
        """The keys behind `--only` on this Redis, each with the unit that moves it."""

    @abstractmethod
    def read_view(self, client: redis.Redis, now: float) -> View:
        """The backlog with ages, the consumers and this system's warnings, for `status`."""

    def label(self, key: str) -> str:
        """A key as reports show it."""
        return key

    def refusals(self, client: redis.Redis) -> list[str]:
        """One line per kind of work that stays on OLD, and why (printed by `migrate`)."""
        return []


def read_journals(client: redis.Redis) -> tuple[int, int, bool]:
    """(items, journals, complete) of the mover's journals on this Redis."""
    journals, complete = scan_keys(client, k.MIGRATE_JOURNAL_PREFIX)
    pipe = client.pipeline(transaction=False)
    for journal in journals:
        pipe.hget(journal, "count")
    return sum(count(raw) for raw in pipe.execute()), len(journals), complete


def scan_keys(client: redis.Redis, start: str) -> tuple[list[str], bool]:
    """Every key beginning with `start`, by a bounded SCAN; False if it was cut short."""
    pattern = escape_glob(start) + "*"
    found: set[str] = set()
    cursor, calls = 0, 0
    while True:
        cursor, keys = client.scan(cursor, match=pattern, count=k.SCAN_BATCH)
        found.update(text(key) for key in keys)
        calls += 1
        if cursor == 0:
            return sorted(found), True
        if calls >= k.SCAN_MAX_CALLS:
            return sorted(found), False


def is_wrong_type(reply: object) -> bool:
    """A pipelined count that came back as WRONGTYPE: the key holds another type."""
    return isinstance(reply, Exception) and str(reply).startswith("WRONGTYPE")


def counts(replies: list[object], keys: list[str]) -> tuple[list[int], tuple[str, ...]]:
    """Pipelined counts, 0 for a key of another type (returned apart); other errors raise."""
    for reply in replies:
        if isinstance(reply, Exception) and not is_wrong_type(reply):
            raise reply
    wrong = tuple(key for key, reply in zip(keys, replies, strict=True) if is_wrong_type(reply))
    return [r if isinstance(r, int) else 0 for r in replies], wrong


def count(raw: bytes | None, unreadable: int = 0) -> int:
    try:
        return max(int(raw or 0), 0)
    except ValueError:
        return unreadable


def text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def escape_glob(value: str) -> str:
    """A namespace like `app[1]:` must match literally in SCAN's glob."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in value)


def age(now: float, stamp: float | None) -> float | None:
    """Seconds since `stamp`, rounded; None when unknown or not finite."""
    if stamp is None:
        return None
    value = now - stamp
    return round(value, 3) if value == value and abs(value) != float("inf") else None
