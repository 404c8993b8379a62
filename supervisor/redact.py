"""Keeps Redis passwords out of every log line, argv and error message."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# userinfo in any scheme://userinfo@host form, and password= in a query string. The userinfo
# runs to the last '@' of the authority (as urllib reads it), so quotes, ':' and '@' in a raw
# password are masked too; only whitespace, '/', '?' and '#' end an authority.
_USERINFO = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#\s]+)@")
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&;](?:password|pass|pwd)=)[^&#\s]*", re.I)
_LEADING_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
_URL_DROPPED_CHARS = frozenset("\t\r\n")  # urlsplit deletes these: multi-line text stays as is


def redact_text(text: str) -> str:
    """Masks every URL password found anywhere in `text` (log lines, error messages)."""
    if _LEADING_URL.match(text) and not _URL_DROPPED_CHARS.intersection(text):
        text = _mask_leading_url(text)
    text = _USERINFO.sub(lambda m: f"{m.group('head')}{_masked(m.group('userinfo'))}@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m.group('key')}{MASK}", text)


def _mask_leading_url(text: str) -> str:
    """A value that starts with a URL (a settings value, a log field) is split as urllib and
    redis-py split it, so a raw space in its password is masked too, not only what looks safe."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    if not at or not userinfo:
        return text
    return urlunsplit(parts._replace(netloc=f"{_masked(userinfo)}@{hostinfo}"))


def _masked(userinfo: str) -> str:
    """`user:***` for a `user:password` split; any other userinfo is masked whole: redis-py
    reads `redis://word@host` as a username, but people write their password there."""
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{MASK}" if colon else MASK


def url_host(url: str) -> str:
    """`host:port` of a Redis URL, or a `unix://` URL's socket path, for the `host` log field
    (never carries userinfo)."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return parts.path
        host = parts.hostname or ""
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return ""
