"""The worker's environment (pure) and the shell's 127/126/64 for the command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor.errors import CommandNotExecutableError, CommandNotFoundError, UsageError
from supervisor.settings import Settings
from supervisor.toss.decide import Decision
from supervisor.toss.execenv import build_env, resolve_command

NEW = "rediss://app:new-pw@new.cache:6380/0"
OLD = "redis://:old-pw@old.example:6379/2"


def decision(side: str) -> Decision:
    return Decision(side, NEW if side == "new" else OLD, "coin", 0.4, "random", 0.5)  # type: ignore[arg-type]


SOURCE = {
    "PATH": "/usr/bin",
    "RAILS_ENV": "production",
    "MIGRATION_NEW_REDIS_URL": NEW,
    "MIGRATION_OLD_REDIS_URL_FILE": "/run/secrets/old",
    "MIGRATION_NEW_WEIGHT": "0.5",
    "REDIS_URL": "redis://stale:6379",
}


@pytest.mark.parametrize("side", ["new", "old"])
def test_worker_gets_the_chosen_url_and_news_for_producers(side: str) -> None:
    """REDIS_URL is the chosen side, REDIS_PRODUCER_URL is NEW, MIGRATION_CHOICE says which."""
    settings = Settings(new_redis_url=NEW, old_redis_url=OLD)
    env = build_env(SOURCE, settings, decision(side))
    assert env == {
        "PATH": "/usr/bin",
        "RAILS_ENV": "production",
        "MIGRATION_NEW_WEIGHT": "0.5",
        "REDIS_URL": NEW if side == "new" else OLD,
        "REDIS_PRODUCER_URL": NEW,
        "MIGRATION_CHOICE": side,
    }


def test_source_url_variables_and_file_twins_never_reach_the_worker() -> None:
    """Least privilege: a worker on NEW never holds OLD's password, in any spelling."""
    source = {
        "MIGRATION_NEW_REDIS_URL": NEW,
        "MIGRATION_OLD_REDIS_URL": OLD,
        "MIGRATION_NEW_REDIS_URL_FILE": "/a",
        "MIGRATION_OLD_REDIS_URL_FILE": "/b",
        "migration_old_redis_url": OLD,
    }
    env = build_env(source, Settings(new_redis_url=NEW, old_redis_url=OLD), decision("new"))
    assert "old-pw" not in repr(env)
    assert sorted(env) == ["MIGRATION_CHOICE", "REDIS_PRODUCER_URL", "REDIS_URL"]


def test_several_export_names() -> None:
    """Each MIGRATION_EXPORT_AS and MIGRATION_PRODUCER_EXPORT_AS name gets its URL."""
    settings = Settings(
        new_redis_url=NEW,
        old_redis_url=OLD,
        export_as="REDIS_URL,SIDEKIQ_REDIS_URL",
        producer_export_as="REDIS_PRODUCER_URL,CACHE_URL",
    )
    env = build_env({}, settings, decision("old"))
    assert env == {
        "REDIS_URL": OLD,
        "SIDEKIQ_REDIS_URL": OLD,
        "REDIS_PRODUCER_URL": NEW,
        "CACHE_URL": NEW,
        "MIGRATION_CHOICE": "old",
    }


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH directory with an executable, a plain file and a directory named like commands."""
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "worker").write_text("#!/bin/sh\nexit 0\n")
    (directory / "worker").chmod(0o755)
    (directory / "notes").write_text("not a program\n")
    (directory / "notes").chmod(0o644)
    (directory / "folder").mkdir()
    return directory


def test_command_on_path_resolves(bin_dir: Path) -> None:
    """A bare name is looked up on the worker's PATH, as execvp would."""
    assert resolve_command(["worker", "-v"], {"PATH": f"/nonexistent:{bin_dir}"}) == str(
        bin_dir / "worker"
    )


@pytest.mark.parametrize(
    ("argv", "error", "code"),
    [
        (["no-such-worker"], CommandNotFoundError, 127),
        (["./no/such/file"], CommandNotFoundError, 127),
        (["notes"], CommandNotExecutableError, 126),
        (["folder"], CommandNotExecutableError, 126),
        ([""], UsageError, 64),
        ([], UsageError, 64),
    ],
)
def test_shell_exit_codes(bin_dir: Path, argv: list[str], error: type, code: int) -> None:
    """Not found is 127, found but not executable is 126, nothing to run is 64."""
    with pytest.raises(error) as caught:
        resolve_command(argv, {"PATH": str(bin_dir)})
    assert caught.value.exit_code == code


def test_paths_with_a_slash_skip_the_search(bin_dir: Path) -> None:
    """`./x` or `/abs/x` name one file: executable resolves, a plain file is 126."""
    assert resolve_command([str(bin_dir / "worker")], {"PATH": ""}) == str(bin_dir / "worker")
    with pytest.raises(CommandNotExecutableError):
        resolve_command([str(bin_dir / "notes")], {"PATH": str(bin_dir)})
    assert os.access(bin_dir / "worker", os.X_OK)
