"""One look at OLD for the drain watch: its backlog, or None when OLD cannot be read.

Redis is imported on the first check, and only supervisors whose worker consumes OLD check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor.redact import url_host

if TYPE_CHECKING:
    import redis

    from supervisor.layouts.base import Backlog, Layout


class OldWatch:
    """Keeps one fast-failing client to OLD across checks; a failed check drops it."""

    def __init__(self, old_url: str, layout: Layout, log: Any) -> None:
        self._url = old_url
        self._layout = layout
        self._log = log
        self._client: redis.Redis | None = None

    def check(self) -> Backlog | None:
        """OLD's backlog now; None (never "drained") when OLD does not answer."""
        from supervisor.connections import check_client, redis_errors

        try:
            if self._client is None:
                self._client = check_client(self._url)
            return self._layout.read_backlog(self._client)
        except redis_errors() as exc:
            self._log.warning(
                "drain_check_failed", host=url_host(self._url), error=type(exc).__name__
            )
            self.close()
            return None

    @property
    def client(self) -> redis.Redis | None:
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
