"""Samples the worker with psutil for `worker_stats` events and the optional RSS limit.

psutil is imported on the first sample, not at start-up, so an idle supervisor stays small.
"""

from __future__ import annotations

from typing import Any


class WorkerSampler:
    """Keeps one psutil handle per child so `cpu_percent` measures the time since the last sample."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.pid = pid
        self._process = psutil.Process(pid)
        self._process.cpu_percent(None)  # primes the counter; the first real figure comes next

    def sample(self) -> dict[str, Any] | None:
        """RSS, CPU %, threads and descendants of the worker; None once it is gone."""
        import psutil

        try:
            with self._process.oneshot():
                rss = self._process.memory_info().rss
                cpu = self._process.cpu_percent(None)
                threads = self._process.num_threads()
            descendants = self._process.children(recursive=True)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return None
        return {
            "pid": self.pid,
            "rss_bytes": rss,
            "cpu_percent": cpu,
            "threads": threads,
            "descendants": len(descendants),
            "tree_rss_bytes": rss + _total_rss(descendants),
        }


def _total_rss(processes: list[Any]) -> int:
    import psutil

    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total
