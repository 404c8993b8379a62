"""Shared fixtures: real redis-server processes and a way to run the real `cointoss` command."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from supervisor.demo.embedded_redis import RedisServer

REPO_ROOT = Path(__file__).resolve().parent.parent
# Redis state captured from a real Sidekiq 7.3.10 fleet and built from Sidekiq 8.1.7's source.
SIDEKIQ_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "sidekiq"


def cointoss_argv(*args: str) -> list[str]:
    """The real command, run from this checkout (works without `pip install`)."""
    return [sys.executable, "-m", "supervisor", *args]


def child_env(
    extra: Mapping[str, str] | None = None, *, keep_migration: bool = False
) -> dict[str, str]:
    """A clean environment for a child process: no stray MIGRATION_* from the caller, this checkout first on PYTHONPATH."""
    env = {
        name: value
        for name, value in os.environ.items()
        if keep_migration or not name.startswith(("MIGRATION_", "ECS_CONTAINER_METADATA"))
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


def run_cointoss(
    args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 60
) -> Completed:
    """Runs `cointoss ARGS` as a real subprocess and returns its code and both streams."""
    proc = subprocess.run(
        cointoss_argv(*args),
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def heartbeat(client, identity: str, busy: int, quiet: bool = False, prefix: str = "") -> None:  # type: ignore[no-untyped-def]
    """A live Sidekiq process as OLD's readers see it: listed in `processes`, heartbeat hash set."""
    client.sadd(prefix + "processes", identity)
    client.hset(
        prefix + identity, mapping={"busy": busy, "quiet": str(quiet).lower(), "info": "{}"}
    )
    client.expire(prefix + identity, 60)


def start_cointoss(
    args: Sequence[str], env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """`cointoss ARGS` left running, for tests that act while it works: stdout is a text pipe,
    stderr is discarded."""
    return subprocess.Popen(
        cointoss_argv(*args),
        env=child_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )


@pytest.fixture(scope="session")
def _old_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def _new_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def old_redis(_old_server: RedisServer) -> RedisServer:
    """OLD: a real redis-server shared by the session, emptied for each test."""
    _old_server.client().flushall()
    return _old_server


@pytest.fixture
def new_redis(_new_server: RedisServer) -> RedisServer:
    """NEW: a second real redis-server, emptied for each test."""
    _new_server.client().flushall()
    return _new_server


@pytest.fixture
def redis_factory() -> Iterator[type[RedisServer]]:
    """Starts extra servers (own password, TLS, to be stopped mid-test); all stopped at the end."""
    started: list[RedisServer] = []

    class Tracked(RedisServer):
        def start(self) -> RedisServer:
            started.append(self)
            return super().start()

    yield Tracked
    for server in started:
        server.stop()


@pytest.fixture
def cointoss_on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has a `cointoss` that runs this checkout (as an install would)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "cointoss"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m supervisor "$@"\n')
    shim.chmod(0o755)
    env = child_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Starts real `cointoss supervise` processes (see tests/supervise_support); all killed at the end."""
    from tests.supervise_support import Supervised

    started: list[Supervised] = []

    def start(command: Sequence[str], env: Mapping[str, str], **options: Any) -> Supervised:
        supervisor = Supervised(command, env, tmp_path, **options)
        started.append(supervisor)
        return supervisor

    yield start
    for supervisor in started:
        supervisor.close()


@pytest.fixture
def metadata_server() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], str]]:
    """A local HTTP server playing ECS task metadata v4: give it a GET handler, get its URI."""
    servers: list[ThreadingHTTPServer] = []

    def start(behaviour: Callable[[BaseHTTPRequestHandler], None]) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                behaviour(self)

            def log_message(self, *_args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v4/abc-123"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
