"""Keeps Redis passwords out of every log line, argv and error message."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"

# userinfo in any scheme://user:secret@host form, and password= in a query string. The secret
# runs to the last '@' of the authority (as urllib reads it), so quotes, ':' and '@' in a raw
# password are masked too; only whitespace, '/', '?' and '#' end an authority.
_USERINFO = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s?#]*):[^/?#\s]*@")
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&;](?:password|pass|pwd)=)[^&#\s]*", re.I)


def redact_text(text: str) -> str:
    """Masks every URL password found anywhere in `text` (log lines, error messages)."""
    text = _USERINFO.sub(lambda m: f"{m.group('head')}{m.group('user')}:{MASK}@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m.group('key')}{MASK}", text)


def url_host(url: str) -> str:
    """`host:port` of a Redis URL, for the `host` log field (never carries userinfo)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return ""
