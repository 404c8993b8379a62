"""Auto-migrate: when OLD holds nothing but scheduled/retry jobs, one supervisor moves them to NEW.

Workers on OLD never see OLD drained while scheduled jobs (Sidekiq's `schedule`/`retry`, RQ's
`scheduled`: the layout's `auto_kinds`) are due days ahead, so the
fleet would never converge by itself. With MIGRATION_AUTO_MIGRATE=true the supervisor runs the
same mover as `cointoss migrate` (crash-safe, exactly once) in a background thread, so that the
main loop keeps forwarding signals; a lock with expiry on OLD lets one supervisor at a time do it.
"""

from __future__ import annotations

import threading
from typing import Any

from supervisor import constants as k
from supervisor.errors import EX_CONFIG, CoinTossError
from supervisor.layouts import get_layout
from supervisor.layouts.base import Backlog
from supervisor.settings import Settings, env_name
from supervisor.supervision.lease import Lease, owner_token


class LeaseLost(Exception):
    """The lock expired under us (a stalled mover): stop between batches; the mover resumes safely."""


def wanted(backlog: Backlog) -> bool:
    """Only scheduled/retry work is left on OLD (its queues, in-flight lists included, are
    empty), or a journal a killed mover left: nothing else would ever replay it."""
    return (
        backlog.complete and backlog.queued == 0 and backlog.scheduled + backlog.moving_batches > 0
    )


def available(settings: Settings) -> bool:
    """On when asked for, and OLD's layout has work that waits for a time (Celery has none)."""
    layout = get_layout(settings)
    return (
        settings.auto_migrate
        and settings.old_redis_url is not None
        and layout is not None
        and bool(layout.auto_kinds)
    )


class AutoMigrator:
    """Starts at most one mover thread per supervisor, and only while it holds OLD's lock."""

    def __init__(self, settings: Settings, log: Any) -> None:
        self.settings = settings
        self.log = log
        self.owner = owner_token()
        self._thread: threading.Thread | None = None
        self.fatal: CoinTossError | None = None  # set by the mover thread; read by the supervisor

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def consider(self, backlog: Backlog) -> None:
        """Called with each look at OLD; starts a move when one is wanted and none runs here."""
        if self.running or not wanted(backlog):
            return
        # signals stay blocked in this thread too: it inherits the main thread's mask
        self._thread = threading.Thread(target=self._move, name="cointoss-automigrate", daemon=True)
        self._thread.start()

    def _move(self) -> None:
        from supervisor.connections import check_client, redis_errors
        from supervisor.migration.mover import failure, run_move

        assert self.settings.old_redis_url is not None
        old_url = self.settings.old_redis_url
        lease: Lease | None = None
        try:
            lease = Lease(
                check_client(old_url, variable=env_name("old_redis_url")),
                k.AUTOMIGRATE_LOCK,
                k.AUTOMIGRATE_LOCK_TTL_MS,
                self.owner,
            )
            if not lease.acquire():
                self.log.info("auto_migrate_skipped", reason="lock_held_elsewhere")
                lease = None
                return
            layout = get_layout(self.settings)
            assert layout is not None  # available()
            only = layout.auto_kinds
            self.log.info("auto_migrate_started", owner=self.owner, only=sorted(only))
            report = run_move(self.settings, only=only, log=self.log, progress=self._renewer(lease))
            self.log.info(
                "auto_migrate_done", owner=self.owner, moved=report.moved, total=report.total
            )
        except LeaseLost:
            self.log.warning("auto_migrate_lock_lost", owner=self.owner)
            lease = None
        except redis_errors(CoinTossError) as exc:
            error = exc if isinstance(exc, CoinTossError) else failure("OLD", old_url, exc)
            self.log.error(
                "auto_migrate_failed",
                error=type(error).__name__,
                detail=str(error),
                exit_code=error.exit_code,
            )
            if error.exit_code == EX_CONFIG:
                self.fatal = error  # a refused command: the supervisor stops with 78
        finally:
            if lease is not None:
                _release(lease)

    def _renewer(self, lease: Lease) -> Any:
        def renew(_label: str, _moved: int, _expected: int) -> None:
            if not lease.renew():
                raise LeaseLost

        return renew


def _release(lease: Lease) -> None:
    """Best effort: a release that fails leaves the lock to expire on its own."""
    from supervisor.connections import redis_errors

    try:
        lease.release()
    except redis_errors():
        return
