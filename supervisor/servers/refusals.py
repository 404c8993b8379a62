"""Sorts a Redis error into what the operator must do: fix the configuration, wait, or look.

A refused command (NOPERM, NOAUTH, WRONGPASS, a command renamed or disabled on the server) is a
configuration error (78): retrying cannot help, and calling it an outage would send operators
chasing networks, or send a fleet to NEW while OLD still holds jobs. A read-only replica (75)
answers but refuses writes. Only a server that does not answer is unreachable (69).

Server error texts can echo a command's arguments, and redis-py's pipeline errors repeat the
command itself, job payloads included; so nothing here ever prints an error's free text: only the
error code, the name of the refused command and, for connection failures, redis-py's own text
about the socket, capped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from supervisor.errors import (
    CoinTossError,
    ConfigError,
    ReadOnlyServerError,
    RedisUnavailableError,
)
from supervisor.redact import redact_text, url_host

REFUSED = "refused"
READ_ONLY = "read_only"
UNREACHABLE = "unreachable"
OTHER = "other"
MAX_DETAIL = 120  # characters of a connection error's own text that may reach a log line

_PIPELINE_MARK = " of pipeline caused error: "
_CODE = re.compile(r"[A-Z][A-Z_]{2,}")
_COMMAND = re.compile(r"(?:command|to run the) ['`]([A-Za-z_|.-]{1,40})['`]")
_UNKNOWN_COMMAND = re.compile(r"unknown command ['`]([^'`\s]{1,40})['`]")
_KEY_OR_CHANNEL = re.compile(r"permissions to access (?:a|one of the) (key|channel)")
# A command a Lua script runs is checked against the user too: Redis 6.2 and 7.0 say only
# that the user "can't run this command", Redis 8 and Valkey name it ("ACL failure in script").
_SCRIPT_REFUSALS = (
    "can't run this command or subcommand",
    "ACL failure in script",
    "Unknown Redis command called from Lua script",
)


@dataclass(frozen=True)
class Diagnosis:
    """What an error means; every field is safe to print (no argument, no payload, no secret)."""

    kind: str  # REFUSED, READ_ONLY, UNREACHABLE or OTHER
    code: str  # the server's error code (NOPERM, READONLY, ...) or the exception's class
    command: str | None = None  # the refused command, lower case, when the server names it
    subject: str | None = None  # "key" or "channel" when NOPERM is about those, not a command
    detail: str = ""  # connection failures only: redis-py's text about the socket, capped
    in_script: bool = False  # refused inside one of cointoss's Lua scripts

    def describe(self) -> str:
        """`NOPERM on info`, `ConnectionError: Error 111 connecting ...`: for log fields."""
        if self.command:
            return f"{self.code} on {self.command}"
        return f"{self.code}: {self.detail}" if self.detail else self.code


def diagnose(exc: BaseException) -> Diagnosis:
    """Which kind of failure `exc` is (see the module's docstring)."""
    import redis

    text = _server_text(exc)
    if isinstance(exc, redis.AuthenticationError):
        code = "WRONGPASS" if "invalid" in text or "WRONGPASS" in text else "NOAUTH"
        return Diagnosis(REFUSED, code)
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError):
        detail = redact_text(str(exc).splitlines()[0])[:MAX_DETAIL] if str(exc) else ""
        return Diagnosis(UNREACHABLE, type(exc).__name__, detail=detail)
    if any(mark in text for mark in _SCRIPT_REFUSALS):
        named = _COMMAND.search(text)
        unknown_in_script = "Unknown Redis command" in text
        return Diagnosis(
            REFUSED,
            "unknown command" if unknown_in_script else "NOPERM",
            command=named.group(1).lower() if named else None,
            in_script=True,
        )
    if isinstance(exc, redis.exceptions.NoPermissionError) or text.startswith("NOPERM"):
        subject = _KEY_OR_CHANNEL.search(text)
        command = _COMMAND.search(text)
        return Diagnosis(
            REFUSED,
            "NOPERM",
            command=command.group(1).lower() if command and not subject else None,
            subject=subject.group(1) if subject else None,
        )
    if isinstance(exc, redis.exceptions.ReadOnlyError) or text.startswith("READONLY"):
        return Diagnosis(READ_ONLY, "READONLY")
    unknown = _UNKNOWN_COMMAND.search(text)
    if unknown and text.lstrip().startswith(("unknown command", "ERR unknown command")):
        return Diagnosis(REFUSED, "unknown command", command=unknown.group(1).lower())
    named = _CODE.match(text)
    return Diagnosis(OTHER, named.group(0) if named else type(exc).__name__)


def operator_error(role: str, url: str, variable: str, exc: BaseException) -> CoinTossError:
    """The one line (and exit code) an operator gets for a Redis error on `role`'s server."""
    found = diagnose(exc)
    where = f"{role} Redis at {url_host(url)}"
    if found.kind == REFUSED:
        return ConfigError(f"{variable}: {where} {refusal(found)}")
    if found.kind == READ_ONLY:
        return read_only_error(role, url, variable)
    if found.kind == UNREACHABLE:
        return RedisUnavailableError(f"{where} is unreachable ({found.describe()})")
    return RedisUnavailableError(f"{where} failed ({found.describe()})")


def read_only_error(role: str, url: str, variable: str) -> ReadOnlyServerError:
    return ReadOnlyServerError(
        f"{variable}: {role} Redis at {url_host(url)} is a read-only replica: it answers but"
        " refuses writes (a failover in progress, or a reader endpoint); use the primary endpoint"
    )


def refusal(found: Diagnosis) -> str:
    """`refused the 'scan' command (NOPERM): grant it ...`: what was refused and what fixes it."""
    if found.code == "WRONGPASS":
        return "refused the login (WRONGPASS): fix the user name and password in the URL"
    if found.code == "NOAUTH":
        return "requires a login (NOAUTH): put user:password@ in the URL"
    if found.subject:
        return (
            f"refused access to a {found.subject} (NOPERM): grant this user the key patterns"
            " cointoss uses (see README, Servers and permissions)"
        )
    if found.command is None:
        where = " inside one of cointoss's Lua scripts" if found.in_script else ""
        return (
            f"refused a command{where} ({found.code}): grant this user every command README"
            " lists for this cointoss command (Servers and permissions)"
        )
    command = found.command
    if found.code == "unknown command":
        return (
            f"does not know the {command!r} command (renamed or disabled on this server):"
            f" enable {command} or use a server that has it"
        )
    return (
        f"refused the {command!r} command (NOPERM): grant it to this user"
        f" (ACL SETUSER <user> +{command.split('|')[0]}; see README, Servers and permissions)"
    )


def is_refusal(exc: BaseException) -> bool:
    return diagnose(exc).kind == REFUSED


def _server_text(exc: BaseException) -> str:
    """The server's own message, without the command redis-py puts in front of pipeline errors."""
    text = str(exc.args[0]) if exc.args else ""
    return text.rpartition(_PIPELINE_MARK)[2] if _PIPELINE_MARK in text else text


def raise_if_refused(role: str, url: str, variable: str, exc: BaseException) -> None:
    """For callers that tolerate an unreachable server: a refusal or a read-only replica is not
    one, and must stop them (78 or 75) instead of passing for an outage."""
    if diagnose(exc).kind in (REFUSED, READ_ONLY):
        raise operator_error(role, url, variable, exc) from None
