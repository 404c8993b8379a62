"""The `cointoss` command: picks a subcommand, builds settings once, turns errors into exit codes.

Subcommand modules are imported only when chosen, so `cointoss exec` never pays for `redis`,
`rich` or `matplotlib`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from supervisor import __version__
from supervisor.errors import CoinTossError, UsageError
from supervisor.output import OutputError, guard_standard_streams
from supervisor.redact import redact_text

EX_SOFTWARE = 70
EX_IOERR = 74
MAX_INTERNAL = 300  # characters of an unexpected error's text


@dataclass(frozen=True)
class Command:
    """Where a subcommand lives. `passthrough` ones take a raw worker command line after `--`."""

    module: str
    run: str
    summary: str
    add_arguments: str | None = None
    needs_settings: bool = True
    passthrough: bool = False


COMMANDS: dict[str, Command] = {
    "exec": Command(
        "supervisor.toss.entrypoint",
        "run_exec",
        "toss, log redis_selected, exec CMD",
        passthrough=True,
    ),
    "supervise": Command(
        "supervisor.supervision.supervise",
        "run",
        "toss, then run CMD as a child: forward signals, reap, restart, move to NEW when OLD drains",
        passthrough=True,
    ),
    "toss": Command(
        "supervisor.toss.entrypoint",
        "run_toss",
        "print the decision as JSON (dry run)",
        "add_toss_arguments",
    ),
    "status": Command(
        "supervisor.migration.status",
        "run",
        "OLD and NEW side by side, and a verdict",
        "add_arguments",
    ),
    "migrate": Command(
        "supervisor.migration.migrate",
        "run",
        "move OLD's schedule/retry (and more) to NEW",
        "add_arguments",
    ),
    "report": Command(
        "supervisor.report.report",
        "run",
        "summarise redis_selected log lines per rollout against the weight",
        "add_arguments",
        needs_settings=False,
    ),
    "demo": Command(
        "supervisor.demo.runner",
        "run",
        "the whole migration on this machine, with a no-job-lost verdict",
        "add_arguments",
        needs_settings=False,
    ),
}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad options; the contract says 64 (EX_USAGE)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _usage() -> str:
    lines = ["usage: cointoss COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<10} {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "Run `cointoss COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one subcommand; every CoinTossError becomes one line on stderr and its exit code.

    Run as the process's own command (`argv` None), the standard streams are guarded first: a
    log line stderr cannot take is dropped, and stdout's first failed write ends the command
    here, whichever command wrote it: quietly with 0 when the reader went away (`| head`), else
    with one line and 74 (EX_IOERR)."""
    if argv is None:
        guard_standard_streams()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _dispatch(args)
    except OutputError as exc:
        code = _output_failed(exc)
    except CoinTossError as exc:
        _error_line(redact_text(str(exc)))
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # the contract: never a traceback, never a secret, no job data
        _error_line(f"internal error: {_internal(exc)}")
        code = EX_SOFTWARE
    try:  # here, not at interpreter exit, where a failure could not be reported
        sys.stdout.flush()
    except OutputError as exc:
        return code or _output_failed(exc)  # a failure already reported keeps its code
    return code


def _output_failed(exc: OutputError) -> int:
    if exc.broken_pipe:
        return 0
    _error_line(f"cannot write output ({exc})")
    return EX_IOERR


def _internal(exc: Exception) -> str:
    """A redis-py error's text may echo a command's arguments (job payloads): only its code."""
    if type(exc).__module__.startswith("redis"):
        from supervisor.servers.refusals import diagnose

        return f"{type(exc).__name__} ({diagnose(exc).describe()})"
    return redact_text(repr(exc))[:MAX_INTERNAL]


def _error_line(text: str) -> None:
    """One write, newline included (`print` writes them apart): under `supervise` the worker
    shares stderr, and its lines must not land inside ours. A stderr that cannot take it
    changes nothing: the exit code still says what happened."""
    try:
        sys.stderr.write(f"cointoss: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else UsageError.exit_code
    if args[0] == "--version":
        print(f"cointoss {__version__}")
        return 0
    name, rest = args[0], args[1:]
    command = COMMANDS.get(name)
    if command is None:
        raise UsageError(f"unknown command {name!r}; commands: {', '.join(COMMANDS)}")
    if command.passthrough:
        if rest and rest[0] in ("-h", "--help"):
            print(f"usage: cointoss {name} [--] COMMAND [ARGS...]\n\n{command.summary}")
            return 0
        if rest and rest[0].startswith("-") and rest[0] != "--":
            # never run an option mistyped for cointoss as the worker (`--bogus`: 127, or worse)
            raise UsageError(
                f"cointoss {name}: unknown option {rest[0]!r}; use cointoss {name} -- COMMAND"
                " [ARGS...] (a command starting with '-' goes after '--')"
            )
        worker_argv = rest[1:] if rest[:1] == ["--"] else rest
        if not worker_argv:
            raise UsageError(f"no command given: use cointoss {name} -- COMMAND [ARGS...]")
        return _run(command, worker_argv)
    module = importlib.import_module(command.module)
    parser = _Parser(prog=f"cointoss {name}", description=command.summary)
    if command.add_arguments:
        getattr(module, command.add_arguments)(parser)
    return _run(command, parser.parse_args(rest))


def _run(command: Command, arguments: Any) -> int:
    from supervisor.logs import configure

    settings = None
    if command.needs_settings:
        from supervisor.settings import load_settings

        settings = load_settings()
    configure(settings.log_format if settings else "auto")
    module = importlib.import_module(command.module)
    result: int = getattr(module, command.run)(arguments, settings)
    return result
