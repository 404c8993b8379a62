"""The worker's process tree: which processes still belong to a worker life, and signalling them.

A life is more than the pid we started. A shell wrapper without `exec`, a launcher that forks, a
pre-fork master: when the first process ends, the rest of its tree can live on. What belongs to
the life is what `/proc` says now: every process in the worker's process group (the first process
leads it, and the kernel keeps that group id reserved while any member lives, so it is never
reused meanwhile), plus every other child of the supervisor, which can
only be an orphan of that tree adopted by us as PID 1 or child subreaper: the supervisor starts one
worker at a time, and the next only once the tree of the last is gone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


def _stat_fields(pid: str) -> tuple[int, int] | None:
    """(ppid, pgid) of a process, from /proc/PID/stat; None when it is gone (or unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so cut at the last ')'
    fields = raw[raw.rfind(b")") + 2 :].split()
    return int(fields[1]), int(fields[2])


def _processes() -> Iterator[tuple[int, int, int]]:
    """(pid, ppid, pgid) of every process visible in /proc."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat_fields(entry)
            if stat is not None:
                yield int(entry), *stat


@dataclass(frozen=True)
class Members:
    """What is left of a life: its group's members, and adopted orphans outside that group."""

    in_group: tuple[int, ...]
    adopted: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.in_group) + len(self.adopted)

    @property
    def pids(self) -> list[int]:
        return sorted((*self.in_group, *self.adopted))


def members(pgid: int) -> Members:
    """Who still belongs to the life whose first process led group `pgid`. Zombies count until
    reaped: the supervisor reaps its own children before it asks."""
    me = os.getpid()
    in_group, adopted = [], []
    for pid, ppid, group in _processes():
        if group == pgid:
            in_group.append(pid)
        elif ppid == me:
            adopted.append(pid)
    return Members(tuple(in_group), tuple(adopted))


def send(pgid: int | None, adopted: Iterable[int], signum: int) -> None:
    """One `signum` to the group at once (unless `pgid` is None), then to each adopted orphan.

    A process that ended in between is skipped: the caller looks at the tree again anyway. The
    adopted ones are our children, so their pids cannot be reused before we reap them.
    """
    group = [] if pgid is None else [(pgid, os.killpg)]
    for target, kill in (*group, *((pid, os.kill) for pid in adopted)):
        try:
            kill(target, signum)
        except ProcessLookupError:
            continue
