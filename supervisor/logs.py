"""Structured events on stderr: JSON lines for machines, a console view for humans, never a secret.

Each event leaves in one write of one whole line of at most PIPE_BUF bytes (`WriteLogger`, the
`JSONLine` renderer and `LineSink`), so the worker's lines on the same stream never tear ours.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, Literal

from supervisor.logsink import LineSink
from supervisor.redact import redact_text
from worker_app.logline import PIPE_BUF, JSONLine, cut

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger


# structlog.dev imports these when installed, only to pretty-print tracebacks (rich,
# better_exceptions) or to colour a Windows console (colorama); cointoss needs none of them.
_STRUCTLOG_EXTRAS = ("rich", "better_exceptions", "colorama")


def _import_structlog() -> ModuleType:
    """structlog without its optional extras: rich alone is about 40% of `cointoss exec`'s
    start-up. The extras stay importable for whoever needs them later in the process."""
    if "structlog" in sys.modules or any(name in sys.modules for name in _STRUCTLOG_EXTRAS):
        import structlog

        return structlog
    for name in _STRUCTLOG_EXTRAS:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail fast
    try:
        import structlog
    finally:
        for name in _STRUCTLOG_EXTRAS:
            del sys.modules[name]
    return structlog


structlog = _import_structlog()

LogFormat = Literal["auto", "json", "console"]


def redact_values(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """Last line of defence: whatever a caller put in an event, no URL password leaves."""
    return {key: _redact(value) for key, value in event.items()}


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    if isinstance(value, dict):
        return {key: _redact(item) for key, item in value.items()}
    return value


def _console_line(_logger: WrappedLogger, _name: str, rendered: str) -> str:
    """The console view cut like a JSON line (a terminal is shared too)."""
    return cut(rendered, PIPE_BUF - 64)  # 64: room for the cut's mark and the newline


_sink: LineSink | None = None


def configure(fmt: LogFormat = "auto", stream: IO[Any] | None = None) -> None:
    """Configures structlog once per process; `auto` means JSON unless stderr is a terminal."""
    global _sink
    stream = sys.stderr if stream is None else stream
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderers: list[Any] = (
        [structlog.dev.ConsoleRenderer(colors=stream.isatty()), _console_line]
        if console
        else [JSONLine()]
    )
    _sink = LineSink(stream)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            redact_values,
            *renderers,
        ],
        # one write per whole line (print() makes two), so the worker's lines never land mid-line
        logger_factory=structlog.WriteLoggerFactory(file=_sink),
        cache_logger_on_first_use=False,
    )


def output() -> LineSink:
    """Where the lines go (configuring the default first if nobody did): the supervisor's loop
    switches it to `never_block` and retries what a full pipe left pending."""
    if _sink is None:
        configure()
    assert _sink is not None
    return _sink


def get_logger(**context: Any) -> Any:
    """A bound logger; events are named by their first argument (`redis_selected`, ...)."""
    return structlog.get_logger(**context)
