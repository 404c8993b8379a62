"""The worker's environment, and the exec that hands the process over to the worker.

`build_env` is pure so tests compare dicts; `exec_worker` is the last thing cointoss does.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence

from supervisor.errors import CommandNotExecutableError, CommandNotFoundError, UsageError
from supervisor.settings import CHOICE_VARIABLE, FILE_SUFFIX, URL_FIELDS, Settings, env_name
from supervisor.toss.decide import Decision

_PYTHON_IGNORED_SIGNALS = ("SIGPIPE", "SIGXFSZ")


def build_env(environ: Mapping[str, str], settings: Settings, decision: Decision) -> dict[str, str]:
    """Least privilege: the worker gets the chosen URL and NEW's, never both source variables."""
    hidden = {env_name(f) for f in URL_FIELDS} | {env_name(f) + FILE_SUFFIX for f in URL_FIELDS}
    env = {name: value for name, value in environ.items() if name.upper() not in hidden}
    env.update(dict.fromkeys(settings.producer_export_as, settings.new_redis_url))
    env.update(dict.fromkeys(settings.export_as, decision.url))
    env[CHOICE_VARIABLE] = decision.side
    return env


def launch_environ() -> dict[str, str]:
    """The environment this process was started with, which the worker must get unchanged.

    Not `os.environ`: under a C/POSIX locale Python sets LC_CTYPE=C.UTF-8 in its own
    environment (PEP 538), which would change, say, a Ruby worker's default encoding. Linux
    keeps the original block in /proc/self/environ; elsewhere `os.environ` is the best we have.
    """
    try:
        with open("/proc/self/environ", "rb") as handle:
            raw = handle.read()
    except OSError:
        return dict(os.environ)
    environ: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        name, sep, value = os.fsdecode(entry).partition("=")
        if sep and name:
            environ.setdefault(name, value)  # the first of duplicates wins, as in os.environ
    return environ


def resolve_command(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The program's path, or the shell's 127/126 before anything else happens."""
    if not argv or not argv[0]:
        raise UsageError("no command given: use cointoss exec -- COMMAND [ARGS...]")
    program = argv[0]
    search_path = environ.get("PATH", os.defpath)
    if "/" in program:
        candidates = [program]
    else:
        found = shutil.which(program, path=search_path)
        if found:
            return found
        candidates = [os.path.join(d or ".", program) for d in search_path.split(os.pathsep)]
    existing = [c for c in candidates if os.path.exists(c)]
    if not existing:
        raise CommandNotFoundError(f"{program}: command not found")
    path = existing[0]
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise CommandNotExecutableError(f"{program}: permission denied or not an executable file")
    return path


def exec_worker(path: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
    """Replaces this process with the worker (same PID: ECS and Docker signal it directly).

    Python ignores SIGPIPE and SIGXFSZ for itself, and an ignored signal survives execve: the
    worker gets them back at their defaults, as `subprocess` does for its children.
    """
    import signal

    for name in _PYTHON_IGNORED_SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execve(path, list(argv), dict(env))
    except FileNotFoundError:
        raise CommandNotFoundError(f"{argv[0]}: command not found") from None
    except OSError as exc:
        raise CommandNotExecutableError(f"{argv[0]}: cannot execute ({exc.strerror})") from None
