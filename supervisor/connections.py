"""Redis clients for checks: short timeouts and no retries, so a dead server costs a start ~1 s.

redis-py is imported here and only here on the start-up path, and only when a check runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from supervisor.constants import CHECK_TIMEOUT_S
from supervisor.errors import ConfigError, RedisUnavailableError
from supervisor.redact import redact_text, url_host
from supervisor.url_options import rejected_option

if TYPE_CHECKING:
    import redis


def check_client(
    url: str,
    timeout_s: float = CHECK_TIMEOUT_S,
    *,
    variable: str = "Redis URL",
    command_timeout_s: float | None = None,
) -> redis.Redis:
    """A client that fails fast instead of retrying: a start-up check must not hang.

    redis-py rejects a bad query option (`?socket_timeout=abc`, `?sslmode=x`) only when it
    builds a connection; one is built here, without connecting, so that becomes a one-line
    ConfigError (78) naming `variable` instead of an internal error. `command_timeout_s`
    (default: `timeout_s`) is for callers whose commands may legitimately take longer.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    def build(candidate: str) -> redis.Redis:
        client = redis.Redis.from_url(
            candidate,
            socket_connect_timeout=timeout_s,
            socket_timeout=command_timeout_s or timeout_s,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        pool = client.connection_pool
        pool.connection_class(**pool.connection_kwargs)
        return client

    try:
        return build(url)
    except (TypeError, ValueError, redis.RedisError) as exc:
        problem = str(exc).rstrip(".")
        if isinstance(exc, TypeError):  # "...__init__() got an unexpected keyword argument 'x'"
            problem = f"has an unknown option {problem.rsplit(' ', 1)[-1]}"
        elif isinstance(exc, redis.RedisError):  # no connection was tried: a value it refuses
            option = rejected_option(url, lambda candidate: _builds(build, candidate))
            problem = f"option {option or 'value'} is refused by redis-py ({problem})"
        accepted = "the query options of redis-py's Redis.from_url"
        raise ConfigError(redact_text(f"{variable}: {problem}; accepted: {accepted}")) from None


def _builds(build: Callable[[str], object], url: str) -> bool:
    try:
        build(url)
    except Exception:  # any failure means this URL does not build either
        return False
    return True


def unreachable(role: str, url: str, exc: Exception) -> RedisUnavailableError:
    """One line that says which Redis and why, never the password (redis-py messages can echo it)."""
    kind = type(exc).__name__
    return RedisUnavailableError(f"{role} Redis at {url_host(url)} is unreachable ({kind})")


def redis_errors(*also: type[Exception]) -> tuple[type[Exception], ...]:
    """The exceptions that mean 'this Redis cannot serve us now' (plus `also`, for one `except`).

    A function, not a constant, so that importing this module does not import redis-py.
    """
    import redis

    return (redis.RedisError, OSError, *also)
