"""One look at OLD for the drain watch: its backlog, or None when OLD cannot be read.

Redis is imported on the first check, and only supervisors whose worker consumes OLD check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supervisor.redact import url_host
from supervisor.settings import env_name

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
        """OLD's backlog now; None (never "drained") when OLD does not answer.

        Raises ConfigError (78) when OLD refuses a command: no later look can succeed.
        """
        from supervisor.connections import check_client, redis_errors
        from supervisor.servers.refusals import raise_if_refused

        variable = env_name("old_redis_url")
        try:
            if self._client is None:
                self._client = check_client(self._url, variable=variable)
            return self._layout.read_backlog(self._client)
        except redis_errors() as exc:
            self.close()
            raise_if_refused("OLD", self._url, variable, exc)
            self._log.warning(
                "drain_check_failed", host=url_host(self._url), error=type(exc).__name__
            )
            return None

    @property
    def client(self) -> redis.Redis | None:
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
