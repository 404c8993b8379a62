"""Samples the worker with psutil for `worker_stats` events and the optional RSS limit.

psutil is imported on the first sample, not at start-up, so an idle supervisor stays small.
"""

from __future__ import annotations

from typing import Any


class WorkerSampler:
    """Keeps one psutil handle per child so `cpu_percent` measures the time since the last sample.

    The tree is every descendant of the supervisor: the worker's own descendants and the orphans
    of its tree that the supervisor adopted (as PID 1 or subreaper), which a worker's
    `children()` no longer lists. The supervisor runs nothing else, so nothing else is counted.
    """

    def __init__(self, pid: int) -> None:
        import psutil

        self.pid = pid
        self._process = psutil.Process(pid)
        self._supervisor = psutil.Process()
        self._process.cpu_percent(None)  # primes the counter; the first real figure comes next

    def sample(self) -> dict[str, Any] | None:
        """RSS, CPU %, threads of the worker, and descendants and RSS of its tree; None once it is gone."""
        import psutil

        try:
            with self._process.oneshot():
                rss = self._process.memory_info().rss
                cpu = self._process.cpu_percent(None)
                threads = self._process.num_threads()
            tree = self._supervisor.children(recursive=True)
            adopted = [child for child in self._supervisor.children() if child.pid != self.pid]
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return None
        others = [process for process in tree if process.pid != self.pid]
        return {
            "pid": self.pid,
            "rss_bytes": rss,
            "cpu_percent": cpu,
            "threads": threads,
            "descendants": len(others),
            "adopted": len(adopted),
            "tree_rss_bytes": rss + _total_rss(others),
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
