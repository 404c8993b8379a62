"""`cointoss exec` and `cointoss toss`: decide once, then hand the process to the worker (or print)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

from supervisor.logs import get_logger
from supervisor.settings import Settings
from supervisor.toss.execenv import build_env, exec_worker, launch_environ, resolve_command
from supervisor.toss.identity import TaskIdentity, read_identity
from supervisor.toss.selection import choose, decision_document, selected_fields

METADATA_VARIABLE = "ECS_CONTAINER_METADATA_URI_V4"


def current_identity(environ: Mapping[str, str]) -> TaskIdentity:
    """The task this process runs in, from the metadata endpoint ECS names in the environment."""
    return read_identity(environ.get(METADATA_VARIABLE))


def run_exec(command: list[str], settings: Settings) -> int:
    """Resolve the command first (127/126 before any Redis is touched), toss, log, exec."""
    environ = launch_environ()
    path = resolve_command(command, environ)
    identity = current_identity(environ)
    log = get_logger()
    decision = choose(settings, identity, log)
    log.info("redis_selected", **selected_fields(settings, decision, identity, command[0]))
    exec_worker(path, command, build_env(environ, settings, decision))
    return 0  # not reached: exec replaced this process


def add_toss_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Print the decision as JSON on stdout; nothing is exec'd (dry run)."


def run_toss(_args: argparse.Namespace, settings: Settings) -> int:
    """A dry run: no `redis_selected` event and no `even` slot taken, so fleet stats stay true."""
    decision = choose(settings, current_identity(launch_environ()), get_logger(), dry_run=True)
    print(json.dumps(decision_document(decision)), file=sys.stdout)
    return 0
