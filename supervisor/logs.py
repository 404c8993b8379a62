"""Structured events on stderr: JSON lines for machines, a console view for humans, never a secret."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TextIO

from supervisor.redact import redact_text

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger


def _import_structlog() -> ModuleType:
    """structlog, loaded without `rich`: structlog.dev imports rich (and pygments) when it is
    installed, only to pretty-print tracebacks, which cointoss never logs. That is about 40% of
    `cointoss exec`'s start-up. rich stays importable for whoever needs it later."""
    if "rich" in sys.modules or "structlog" in sys.modules:
        import structlog

        return structlog
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` fail fast
    try:
        import structlog
    finally:
        del sys.modules["rich"]
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
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Any:
    """A bound logger; events are named by their first argument (`redis_selected`, ...)."""
    return structlog.get_logger(**context)
