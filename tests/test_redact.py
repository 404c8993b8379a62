"""Passwords in Redis URLs are masked wherever a URL can appear in text."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.redact import MASK, redact_text, url_host
from worker_app.connection import redact as worker_redact

# RFC 3986 lets a password hold unreserved and sub-delim characters, ':' and '%xx' escapes
# unencoded; urllib (hence redis-py) also takes a raw '@' (the userinfo ends at the last '@').
RAW_PASSWORD_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@"
)
MARKER = "Zq9"  # makes the secret unique in the text, so 'not in' is meaningful


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        (
            "rediss://app:s3cret@h:6380/1?ssl_ca_certs=/ca.pem",
            "rediss://app:***@h:6380/1?ssl_ca_certs=/ca.pem",
        ),
        ("unix://:s3cret@/run/redis.sock?db=0", "unix://:***@/run/redis.sock?db=0"),
        ("unix:///run/redis.sock?db=0&password=s3cret", "unix:///run/redis.sock?db=0&password=***"),
        ("redis://h:6379/0?Password=s3cret&x=1", "redis://h:6379/0?Password=***&x=1"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("redis://user@h:6379", "redis://***@h:6379"),
        ("redis://@h:6379", "redis://@h:6379"),
        ("redis://a@b:pw@h:6379", "redis://a@b:***@h:6379"),
        ("failed: redis://s3cret@h:6379/0 (timeout)", "failed: redis://***@h:6379/0 (timeout)"),
        (
            "Error connecting to redis://u:s3cret@h:1. refused.",
            "Error connecting to redis://u:***@h:1. refused.",
        ),
        ("a redis://:x@a and rediss://:y@b", "a redis://:***@a and rediss://:***@b"),
        ("redis://:raw space@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://u:p@h:1 is down", "redis://u:***@h:1 is down"),
        ("redis://u:p@h:1/0\n\tsecond line", "redis://u:***@h:1/0\n\tsecond line"),
    ],
)
def test_known_shapes(text: str, expected: str) -> None:
    """Userinfo passwords and password= query values are masked; everything else is kept."""
    assert redact_text(text) == expected


@given(
    user=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-.", max_size=10),
    secret=st.text(alphabet=RAW_PASSWORD_CHARS, min_size=1, max_size=30),
    context=st.sampled_from(["{}", "'{}'", '"{}"', "url={} next", "('{}', 'other@x')", "{}\n{}"]),
    scheme=st.sampled_from(["redis", "rediss", "unix"]),
)
def test_raw_password_never_survives(user: str, secret: str, context: str, scheme: str) -> None:
    """Any password a URL may legally carry unencoded is masked, whatever text surrounds it."""
    password = MARKER + secret
    url = f"{scheme}://{user}:{password}@127.0.0.1:6379/0"
    redacted = redact_text(context.format(url, url))
    assert password not in redacted
    assert f"{scheme}://{user}:{MASK}@" in redacted


@given(
    secret=st.text(alphabet=RAW_PASSWORD_CHARS.replace(":", ""), min_size=1, max_size=30),
    context=st.sampled_from(["{}", "'{}'", "url={} next", "{}\n{}"]),
    scheme=st.sampled_from(["redis", "rediss", "unix"]),
)
def test_userinfo_without_colon_never_survives(secret: str, context: str, scheme: str) -> None:
    """`redis://word@host` is a username to redis-py but often a password to its writer: the
    whole userinfo is masked."""
    word = MARKER + secret
    url = f"{scheme}://{word}@127.0.0.1:6379/0"
    for redact in (
        redact_text,
        worker_redact,
    ):  # worker_app keeps its own (it never imports supervisor)
        redacted = redact(context.format(url, url))
        assert word not in redacted
        assert f"{scheme}://{MASK}@127.0.0.1:6379/0" in redacted


@given(secret=st.text(min_size=1, max_size=30))
def test_encoded_password_never_survives(secret: str) -> None:
    """Any password at all, percent-encoded as URLs require, is masked in userinfo and query."""
    password = quote(MARKER + secret, safe="")
    for url in (
        f"redis://default:{password}@h:6379/0",
        f"redis://h:6379/0?password={password}",
    ):
        assert password not in redact_text(f"failed: {url} (timeout)")


def test_url_host_never_carries_userinfo() -> None:
    """The `host` field is host:port (a unix socket's path) only, empty for what cannot be parsed."""
    assert url_host("rediss://u:pw@cache.example.com:6380/0") == "cache.example.com:6380"
    assert url_host("redis://:pw@10.0.0.5/0") == "10.0.0.5"
    assert url_host("redis://h:99999999") == ""
    assert url_host("unix:///run/redis.sock") == "/run/redis.sock"  # the socket is the host
    assert url_host("unix://u:pw@/run/redis.sock?db=2") == "/run/redis.sock"
