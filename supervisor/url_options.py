"""Which query option of a Redis URL the client library refuses, to name it in the 78 line.

redis-py's messages do not always name the option (`?ssl_cert_reqs=bogus` gives "Invalid SSL
Certificate Requirements Flag: bogus", `?protocol=4` "protocol must be either 2 or 3"), so the
URL is rebuilt without each option in turn: the one whose removal makes the client build is it.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def rejected_option(url: str, builds: Callable[[str], bool]) -> str | None:
    """The first query option without which `builds(url)` is True; None if none is alone at fault."""
    try:
        parts = urlsplit(url)
        options = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return None
    for index, (name, _value) in enumerate(options):
        rest = options[:index] + options[index + 1 :]
        if builds(urlunsplit(parts._replace(query=urlencode(rest)))):
            return name
    return None
