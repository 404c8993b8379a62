"""Zombie reaping: adopt orphans when not PID 1, and collect every exited child without blocking.

As PID 1 the kernel hands every orphan of the container to us. Not as PID 1 (ECS
`initProcessEnabled`, `docker --init`) orphans would go to that init instead, and zombies the
worker leaves behind would pile up under it unless we register as a child subreaper.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def _prctl() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    return getattr(libc, "prctl", None)


def become_subreaper() -> bool:
    """Registers this process as a child subreaper (Linux >= 3.4); False where that is impossible."""
    prctl = _prctl()
    if prctl is None:
        return False
    return int(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0


def is_subreaper() -> bool:
    """What the kernel says about this process right now."""
    prctl = _prctl()
    if prctl is None:
        return False
    flag = ctypes.c_int(0)
    if int(prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0)) != 0:
        return False
    return flag.value != 0


def reap_all() -> list[tuple[int, int]]:
    """Every (pid, wait status) that has exited since the last call: our child's and orphans'."""
    reaped: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.append((pid, status))
