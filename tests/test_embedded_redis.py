"""The fixtures' own contract: real servers, isolated, with passwords kept out of argv."""

from __future__ import annotations

import psutil

from supervisor.embedded_redis import RedisServer


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
