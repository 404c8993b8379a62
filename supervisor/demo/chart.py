"""The demo's picture: OLD draining while NEW takes over, and which side the tasks were on.

matplotlib is imported here, lazily, with the Agg backend: no display is needed. It comes with
the `demo` extra (`pip install -e '.[demo]'` in a checkout), so the worker image does not carry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One look at both Redis and the fleet, `t_s` seconds into the run."""

    t_s: float
    old_queued: int
    old_later: int  # schedule + retry
    new_queued: int
    new_later: int
    tasks_old: int
    tasks_new: int
    tasks_starting: int  # alive, not yet said which side
    processed_old: int
    processed_new: int


@dataclass(frozen=True)
class Marker:
    """A moment worth a vertical line: a deployment, a kill, a mover run."""

    t_s: float
    kind: str  # "deployment" | "kill" | "mover"
    label: str


_MARKER_STYLE = {
    "deployment": ("tab:gray", "--"),
    "kill": ("tab:red", ":"),
    "mover": ("tab:green", "-."),
}


class ChartUnavailable(Exception):
    """matplotlib is not installed: the demo still writes its summary and events."""


def draw_chart(
    samples: Sequence[Sample], markers: Sequence[Marker], path: Path, title: str
) -> Path:
    """Writes a two-panel PNG: queue depth on each Redis, and tasks per side (stacked)."""
    try:
        import matplotlib
    except ImportError:
        raise ChartUnavailable(
            f"{path.name} not drawn: matplotlib is not installed (the demo extra:"
            " pip install -e '.[demo]' in a checkout)"
        ) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t_s for s in samples]
    figure, (depth, tasks) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.5))
    depth.plot(t, [s.old_queued for s in samples], color="tab:orange", label="OLD queued")
    depth.plot(
        t, [s.old_later for s in samples], color="tab:orange", ls="--", label="OLD schedule+retry"
    )
    depth.plot(t, [s.new_queued for s in samples], color="tab:blue", label="NEW queued")
    depth.plot(
        t, [s.new_later for s in samples], color="tab:blue", ls="--", label="NEW schedule+retry"
    )
    depth.set_ylabel("jobs waiting")
    depth.legend(loc="upper right", fontsize="small")
    depth.set_title(title)
    # Stacked, so equal counts on both sides cannot hide one another; the top edge is the fleet.
    on_old = [s.tasks_old for s in samples]
    on_both = [s.tasks_old + s.tasks_new for s in samples]
    everyone = [b + s.tasks_starting for b, s in zip(on_both, samples, strict=True)]
    for low, high, color, label in (
        ([0] * len(t), on_old, "tab:orange", "tasks on OLD"),
        (on_old, on_both, "tab:blue", "tasks on NEW"),
        (on_both, everyone, "tab:gray", "starting"),
    ):
        tasks.fill_between(t, low, high, step="post", color=color, alpha=0.6, lw=0, label=label)
    tasks.set_ylabel("tasks")
    tasks.set_xlabel("seconds")
    tasks.legend(loc="upper right", fontsize="small")
    for marker in markers:
        color, style = _MARKER_STYLE.get(marker.kind, ("black", "-"))
        for axes in (depth, tasks):
            axes.axvline(marker.t_s, color=color, ls=style, lw=0.8, alpha=0.7)
        tasks.annotate(
            marker.label,
            (marker.t_s, 0),
            xytext=(2, 2),
            textcoords="offset points",
            rotation=90,
            fontsize="x-small",
            color=color,
        )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
