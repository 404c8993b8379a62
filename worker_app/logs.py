"""JSON log lines on stderr (structlog), one per event, cheap enough to write one per job.

Each event leaves in one write of one whole line of at most PIPE_BUF bytes (`WriteLogger` and the
`JSONLine` renderer): under `cointoss supervise` the supervisor writes to the same stream, and a
line split over two writes could be torn by its lines.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from worker_app.connection import redact
from worker_app.logline import JSONLine


def _redact_strings(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """Last line of defence against a URL password inside an error message."""
    for key, value in event.items():
        if isinstance(value, str) and "@" in value:
            event[key] = redact(value)
    return event


def configure(level: str = "info") -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            _redact_strings,
            JSONLine(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # one write per whole line (print() makes two): a supervisor may share this stderr
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(**context: Any) -> Any:
    return structlog.get_logger(**context)
