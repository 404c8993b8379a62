"""Queue systems, one subpackage per system: how each lays out its work on Redis.

Everything above a layout (the drain check before a toss, supervise's convergence, `status`,
the mover, auto-migrate) reads OLD and NEW only through `Layout` (see `base.py`), the way
kombu's `transport/` hides each broker behind one class chosen by name.

Adding a queue system (BullMQ, Resque, Dramatiq, ...) means one subpackage `layouts/<name>/`,
whose docstring states its drain definition and what may move, with:

- `keys.py`: its key names, and nothing else builds them;
- `layout.py`, a `Layout` subclass: `read_backlog` (its drain definition; set `Backlog.unproven` where
  Redis cannot show that nothing runs), `consumers` (live and busy), `read_view` (status rows
  and warnings for its traps), `sources` (what may move while OLD's consumers live), and
  `refusals` (what must not, in one line each);
- `lua.py` if its items are not self-contained (a job hash that travels with its id): a
  `Unit` whose claim writes the common journal and whose apply checks the common marker,
  listed in the layout's `units`;
- its name in `get_layout` and `all_layouts` below and in `MIGRATION_QUEUE_LAYOUT`'s accepted values.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supervisor.layouts.base import Layout, Unit
    from supervisor.settings import Settings


def get_layout(settings: Settings) -> Layout | None:
    """The layout MIGRATION_QUEUE_LAYOUT names, or None for `none` (a coin and nothing else)."""
    name = settings.queue_layout
    if name == "sidekiq":
        from supervisor.layouts.sidekiq.layout import SidekiqLayout

        return SidekiqLayout(settings.key_prefix)
    if name == "rq":
        from supervisor.layouts.rq.layout import RqLayout

        return RqLayout(os.environ.get("RQ_KEY_PREFIX", "rq"))
    if name == "celery":
        from supervisor.layouts.celery.layout import CeleryLayout

        return CeleryLayout(
            settings.key_prefix,
            visibility_timeout_s=settings.celery_visibility_timeout,
            acks_late=settings.celery_acks_late,
        )
    return None


def unit_for(kind: str) -> Unit | None:
    """The unit a journal's `kind` names, whichever layout claimed it."""
    units = (unit for layout in all_layouts() for unit in layout.units)
    return next((unit for unit in units if unit.kind == kind), None)


def all_layouts() -> tuple[type[Layout], ...]:
    """Every layout class; imported on demand so that `exec` loads only the one it uses."""
    from supervisor.layouts.celery.layout import CeleryLayout
    from supervisor.layouts.rq.layout import RqLayout
    from supervisor.layouts.sidekiq.layout import SidekiqLayout

    return (SidekiqLayout, RqLayout, CeleryLayout)
