"""`python -m worker_app`: the worker.

Exit 0 after a clean stop; 78 on a bad setting or when Redis refuses the credentials.
"""

from __future__ import annotations

import importlib
import sys

from worker_app import logs
from worker_app.config import EX_CONFIG, ConfigError, load_config


def _config_error(text: str) -> int:
    """One line in one write (`print` writes the newline apart, and a supervisor may share
    stderr), then the configuration error's exit code."""
    sys.stderr.write(f"worker_app: {text}\n")
    sys.stderr.flush()
    return EX_CONFIG


def main() -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        return _config_error(str(exc))
    logs.configure(config.log_level)
    for module in config.imports:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return _config_error(f"WORKER_IMPORT: cannot import {module!r}: {exc}")
    from worker_app.connection import connect, redact

    for name, url in (("REDIS_URL", config.redis_url), ("REDIS_PRODUCER_URL", config.producer_url)):
        try:
            connect(url)
        except ValueError as exc:
            return _config_error(f"{name}: {redact(str(exc))}")
    from worker_app.worker import Worker

    return Worker(config, logs.get_logger()).run()


if __name__ == "__main__":
    sys.exit(main())
