"""Redis clients as worker_app needs them: raw bytes, timeouts above BRPOPLPUSH's 2 s."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import redis

SOCKET_TIMEOUT_S = 10.0  # longer than any blocking command we send (2 s)
CONNECT_TIMEOUT_S = 2.0
# the userinfo runs to the last '@' of the authority, as urllib (hence redis-py) reads it
_USERINFO = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#\s]+)@")
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&;](?:password|pass|pwd)=)[^&#\s]*", re.I)


def connect(url: str) -> redis.Redis:
    """A thread-safe pooled client; `decode_responses` off so payloads stay exact bytes."""
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_keepalive=True,
    )


def host_of(url: str) -> str:
    """`host:port/db` for logs: never the userinfo, so never a password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        db = parts.path.strip("/") or "0"
        return f"{host}{port}/{db}"
    except ValueError:
        return "?"


def redact(text: str) -> str:
    """Masks a URL password that made its way into an error message: `user:***@`, or the whole
    userinfo when it has no ':' (a password written where redis-py expects a username)."""
    text = _USERINFO.sub(lambda m: f"{m.group('head')}{_masked(m.group('userinfo'))}@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m.group('key')}***", text)


def _masked(userinfo: str) -> str:
    user, colon, _ = userinfo.partition(":")
    return f"{user}:***" if colon else "***"
