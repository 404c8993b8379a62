"""Structured events on stderr: JSON lines for machines, a console view for humans, never a secret."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TextIO

from supervisor.redact import redact_text

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


def configure(fmt: LogFormat = "auto", stream: TextIO | None = None) -> None:
    """Configures structlog once per process; `auto` means JSON unless stderr is a terminal."""
    stream = sys.stderr if stream is None else stream
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            redact_values,
            renderer,
        ],
        # one write per line (print() makes two), so the worker's lines never land mid-line
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Any:
    """A bound logger; events are named by their first argument (`redis_selected`, ...)."""
    return structlog.get_logger(**context)
