"""Every error an operator can see, each carrying the exit code the contract gives it.

Only `cli.main()` catches these: it prints the one-line message and exits with `exit_code`.
Messages must already be redacted when they are built (use `redact.redact_text`).
"""

from __future__ import annotations

EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_CONFIG = 78
EX_NOT_EXECUTABLE = 126
EX_NOT_FOUND = 127


class CoinTossError(Exception):
    """Base of every operator-facing failure; `exit_code` is what the process exits with."""

    exit_code = 1


class UsageError(CoinTossError):
    """The command line itself is wrong (no command to exec, unknown option)."""

    exit_code = EX_USAGE


class DataError(CoinTossError):
    """A Redis key holds something cointoss must not touch (a key of the wrong type)."""

    exit_code = EX_DATAERR


class ConfigError(CoinTossError):
    """A setting is missing or malformed; the message names the variable and what is accepted."""

    exit_code = EX_CONFIG


class InputUnreadableError(CoinTossError):
    """An input file given to an operator command does not exist or cannot be read."""

    exit_code = EX_NOINPUT


class RedisUnavailableError(CoinTossError):
    """A Redis that cointoss must talk to cannot be reached (NEW, or OLD under policy `fail`)."""

    exit_code = EX_UNAVAILABLE


class CommandNotFoundError(CoinTossError):
    """The worker command is not on PATH: 127, as a shell would say."""

    exit_code = EX_NOT_FOUND


class CommandNotExecutableError(CoinTossError):
    """The worker command exists but cannot be executed: 126, as a shell would say."""

    exit_code = EX_NOT_EXECUTABLE


class ReadOnlyServerError(CoinTossError):
    """The server answers but is a read-only replica (after a failover, or a reader endpoint):
    75, since the primary endpoint is usually writable again once the failover ends."""

    exit_code = EX_TEMPFAIL
