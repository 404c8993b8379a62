"""The `cointoss` command as a user runs it: every exit code, and no password in any output."""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from pathlib import Path

import pytest

from supervisor import cli
from supervisor.cli import COMMANDS, Command, main
from supervisor.demo.embedded_redis import RedisServer
from tests.conftest import Completed, run_cointoss


def stopped(redis_factory: type[RedisServer], **kwargs: str) -> RedisServer:
    server = redis_factory(**kwargs).start()
    server.stop()
    return server


def urls(new: RedisServer | str, old: RedisServer | str, **extra: str) -> dict[str, str]:
    def url(server: RedisServer | str) -> str:
        return server.url if isinstance(server, RedisServer) else server

    return {"MIGRATION_NEW_REDIS_URL": url(new), "MIGRATION_OLD_REDIS_URL": url(old), **extra}


def one_error_line(result: Completed) -> str:
    """The contract for failures: exactly one line on stderr, `cointoss: ...`, no traceback."""
    (line,) = result.stderr.splitlines()
    assert line.startswith("cointoss: ")
    assert "Traceback" not in result.stdout + result.stderr
    return line


class TestExitCodes:
    def test_toss_prints_the_decision_as_json_and_exits_0(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """`cointoss toss` is a dry run: the decision on stdout, nothing exec'd."""
        result = run_cointoss(["toss"], urls(new_redis, old_redis, MIGRATION_NEW_WEIGHT="0.5"))
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert set(document) == {"side", "reason", "weight", "strategy", "draw", "url"}
        assert (document["side"], document["reason"]) == ("new", "old_drained")
        assert "redis_selected" not in result.stderr  # a dry run is not a worker's choice

    def test_seed_makes_toss_reproducible(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """The same MIGRATION_SEED gives the same draw run after run (incident replay)."""
        old_redis.client().lpush("queue:default", "{}")
        env = urls(new_redis, old_redis, MIGRATION_SEED="1234")
        draws = {json.loads(run_cointoss(["toss"], env).stdout)["draw"] for _ in range(3)}
        assert len(draws) == 1
        other = json.loads(run_cointoss(["toss"], {**env, "MIGRATION_SEED": "99"}).stdout)
        assert other["draw"] not in draws

    @pytest.mark.parametrize(
        "args", [["--help"], ["-h"], ["--version"], ["exec", "--help"], ["toss", "--help"]]
    )
    def test_help_and_version_exit_0(self, args: list[str]) -> None:
        """Help and version need no settings and exit 0 on stdout."""
        result = run_cointoss(args)
        assert result.returncode == 0
        assert result.stdout and not result.stderr

    def test_help_lists_every_command(self) -> None:
        """`cointoss --help` names each command in COMMANDS."""
        shown = run_cointoss(["--help"]).stdout
        assert all(name in shown for name in COMMANDS)

    @pytest.mark.parametrize(
        "args",
        [[], ["bogus"], ["exec"], ["exec", "--"], ["toss", "--bogus"], ["toss", "extra"]],
        ids=[
            "nothing",
            "unknown-command",
            "exec-nothing",
            "exec-dashdash",
            "bad-option",
            "extra-arg",
        ],
    )
    def test_usage_errors_exit_64(
        self, old_redis: RedisServer, new_redis: RedisServer, args: list[str]
    ) -> None:
        """A wrong command line is 64 (EX_USAGE), never argparse's 2."""
        result = run_cointoss(args, urls(new_redis, old_redis))
        assert result.returncode == 64
        assert result.stderr.strip()
        assert "Traceback" not in result.stderr

    @pytest.mark.parametrize("command", ["exec", "supervise"])
    @pytest.mark.parametrize(
        "options", [["--bogus", "--"], ["-x"], ["--bogus=1", "--"], ["-"]], ids=str
    )
    def test_an_option_before_the_command_is_64_and_nothing_runs(
        self,
        old_redis: RedisServer,
        new_redis: RedisServer,
        tmp_path: Path,
        command: str,
        options: list[str],
    ) -> None:
        """`exec --bogus -- CMD` is a mistyped option, not a command named `--bogus`."""
        marker = tmp_path / "ran"
        args = [command, *options, "sh", "-c", f'touch "{marker}"']
        result = run_cointoss(args, urls(new_redis, old_redis, MIGRATION_NEW_WEIGHT="1"))
        assert result.returncode == 64
        assert repr(options[0]) in one_error_line(result)
        assert not marker.exists()

    def test_a_command_starting_with_a_dash_goes_after_dashdash(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """After `--` anything is the worker's: `-bogus` is looked up on PATH (127)."""
        env = urls(new_redis, old_redis, MIGRATION_NEW_WEIGHT="1")
        assert run_cointoss(["exec", "--", "-bogus"], env).returncode == 127

    @pytest.mark.parametrize(
        ("variable", "value", "named"),
        [
            ("MIGRATION_BOGUS_SETTING", "1", "MIGRATION_BOGUS_SETTING"),
            ("MIGRATION_WEIGHT", "1", "MIGRATION_WEIGHT"),
            ("MIGRATION_NEW_WEIGHT", "1e-400", "MIGRATION_NEW_WEIGHT"),
        ],
    )
    @pytest.mark.parametrize("command", ["toss", "exec"])
    def test_a_misspelled_or_underflowing_setting_is_78(
        self,
        old_redis: RedisServer,
        new_redis: RedisServer,
        command: str,
        variable: str,
        value: str,
        named: str,
    ) -> None:
        """Never a silent default: the start stops with one line naming the variable."""
        args = [command] + (["--", "true"] if command == "exec" else [])
        result = run_cointoss(args, urls(new_redis, old_redis, **{variable: value}))
        assert result.returncode == 78
        assert one_error_line(result).startswith(f"cointoss: {named}: ")
        assert result.stdout == ""

    def test_unreachable_new_exits_69(
        self, redis_factory: type[RedisServer], old_redis: RedisServer
    ) -> None:
        """A dead NEW during the pre-toss check is 69, for exec and toss alike."""
        new = stopped(redis_factory)
        for args in (["toss"], ["exec", "--", "true"]):
            result = run_cointoss(args, urls(new, old_redis))
            assert result.returncode == 69
            assert f"NEW Redis at 127.0.0.1:{new.port} is unreachable" in one_error_line(result)

    def test_unreachable_old_exits_69_only_under_policy_fail(
        self, redis_factory: type[RedisServer], new_redis: RedisServer
    ) -> None:
        """OLD dead: exec goes on to NEW by default, and stops with 69 under policy `fail`."""
        old = stopped(redis_factory)
        assert run_cointoss(["exec", "--", "true"], urls(new_redis, old)).returncode == 0
        result = run_cointoss(
            ["exec", "--", "true"], urls(new_redis, old, MIGRATION_OLD_UNREACHABLE="fail")
        )
        assert result.returncode == 69
        assert "OLD Redis" in one_error_line(result)

    @pytest.mark.parametrize(
        ("extra", "variable"),
        [
            ({"MIGRATION_NEW_WEIGHT": "lots"}, "MIGRATION_NEW_WEIGHT"),
            ({"MIGRATION_STRATEGY": "fair"}, "MIGRATION_STRATEGY"),
            ({"MIGRATION_NEW_REDIS_URL": "http://x/0"}, "MIGRATION_NEW_REDIS_URL"),
            (
                {"MIGRATION_NEW_REDIS_URL_FILE": "/nonexistent/secret"},
                "MIGRATION_NEW_REDIS_URL_FILE",
            ),
        ],
    )
    def test_bad_settings_exit_78_with_one_line(
        self, old_redis: RedisServer, new_redis: RedisServer, extra: dict[str, str], variable: str
    ) -> None:
        """Bad configuration is 78 and one line naming the variable, for every command."""
        env = urls(new_redis, old_redis, **extra)
        if "MIGRATION_NEW_REDIS_URL_FILE" in extra:
            del env["MIGRATION_NEW_REDIS_URL"]
        for args in (["toss"], ["exec", "--", "true"]):
            result = run_cointoss(args, env)
            assert result.returncode == 78
            assert one_error_line(result).startswith(f"cointoss: {variable}: ")

    def test_missing_command_exits_127_before_any_redis_check(
        self, redis_factory: type[RedisServer]
    ) -> None:
        """Not found is 127 even when both Redis are down: the command is resolved first."""
        env = urls(stopped(redis_factory), stopped(redis_factory))
        result = run_cointoss(["exec", "--", "no-such-worker-xyz"], env)
        assert result.returncode == 127
        assert "no-such-worker-xyz: command not found" in one_error_line(result)

    def test_not_executable_exits_126(
        self, old_redis: RedisServer, new_redis: RedisServer, tmp_path: Path
    ) -> None:
        """A file without the execute bit, or a directory, is 126."""
        script = tmp_path / "worker.sh"
        script.write_text("#!/bin/sh\nexit 0\n")
        for target in (script, tmp_path):
            result = run_cointoss(["exec", "--", str(target)], urls(new_redis, old_redis))
            assert result.returncode == 126
            one_error_line(result)

    def test_worker_exit_code_and_signal_pass_through(
        self, old_redis: RedisServer, new_redis: RedisServer
    ) -> None:
        """After exec the worker's own code, or its death by signal, is what the caller sees."""
        env = urls(new_redis, old_redis, MIGRATION_NEW_WEIGHT="1")
        assert run_cointoss(["exec", "--", "sh", "-c", "exit 7"], env).returncode == 7
        assert run_cointoss(["exec", "sh", "-c", "kill -TERM $$"], env).returncode == -15


def explode(_args: object, _settings: object) -> int:
    """A command that fails in a way no code path expected."""
    raise RuntimeError("boom while talking to redis://admin:internal-Pw-31@10.0.0.9:6379/0")


def test_unexpected_error_is_70_one_line_and_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything unforeseen is exit 70 (EX_SOFTWARE) with one redacted line, never a traceback."""
    monkeypatch.setitem(
        COMMANDS, "explode", Command(__name__, "explode", "test", needs_settings=False)
    )
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["explode"])
    assert code == cli.EX_SOFTWARE == 70
    assert err.getvalue().splitlines() == [
        "cointoss: internal error: RuntimeError('boom while talking to "
        "redis://admin:***@10.0.0.9:6379/0')"
    ]


# --- a unique password never appears in any output of any command -------------------------

SECRET = f"uniq-{uuid.uuid4().hex}"
WRONG = f"wrong-{uuid.uuid4().hex}"
# How each command is run when it exists (other commands join COMMANDS as they are built).
INVOCATIONS = {
    "exec": [["exec", "--", "true"]],
    "toss": [["toss"]],
    "supervise": [["supervise", "--", "true"]],
    "status": [["status"], ["status", "--json"]],
    "migrate": [["migrate", "--dry-run"]],
    "report": [["report", "{log}"]],
}
NOT_RUN_HERE = {"demo"}  # starts its own servers, has no URLs to leak


def test_every_command_has_a_leak_check() -> None:
    """A new command must be added to INVOCATIONS so its output is checked for passwords."""
    assert set(COMMANDS) <= set(INVOCATIONS) | NOT_RUN_HERE


def scenarios(redis_factory: type[RedisServer], tmp_path: Path) -> dict[str, dict[str, str]]:
    """Success and failure environments, every URL carrying SECRET (or WRONG) as password."""
    new = redis_factory(password=SECRET, username="app").start()
    old = redis_factory(password=SECRET).start()
    old.client().lpush("queue:default", "{}")
    dead = stopped(redis_factory, password=SECRET)
    wrong_new = new.url.replace(SECRET, WRONG)
    secret_file = tmp_path / "old-url"
    secret_file.write_text(old.url + "\n")
    bare = redis_factory().start()  # no password: redis-py sends the colon-less userinfo as a user
    bare_url = bare.url.replace("redis://", f"redis://{SECRET}@")
    return {
        "ok-checks-on": urls(new, old),
        "ok-weight-1": urls(new, old, MIGRATION_NEW_WEIGHT="1"),
        "ok-even": urls(new, old, MIGRATION_STRATEGY="even"),
        "ok-file": {
            "MIGRATION_NEW_REDIS_URL": new.url,
            "MIGRATION_OLD_REDIS_URL_FILE": str(secret_file),
        },
        "ok-old-dead": urls(new, dead),
        "fail-new-dead": urls(dead, old),
        "fail-old-dead": urls(new, dead, MIGRATION_OLD_UNREACHABLE="fail"),
        "fail-wrong-password": urls(wrong_new, old),
        "fail-bad-weight": urls(new, old, MIGRATION_NEW_WEIGHT="2"),
        "fail-bad-option": urls(f"{new.url}?socket_timeout=x", old),
        "fail-both-set": {**urls(new, old), "MIGRATION_OLD_REDIS_URL_FILE": str(secret_file)},
        "fail-bad-scheme": urls(new.url.replace("redis://", "http://"), old),
        "ok-userinfo-without-colon": urls(bare_url, bare_url, MIGRATION_NEW_WEIGHT="1"),
        "fail-userinfo-without-colon": urls(bare_url, bare_url),
    }


def test_a_unique_password_never_appears_in_any_output(
    redis_factory: type[RedisServer], tmp_path: Path
) -> None:
    """Every command, in success and failure, keeps the password out of stdout and stderr."""
    log = tmp_path / "events.log"
    log.write_text(
        json.dumps({"event": "redis_selected", "url": f"redis://:{SECRET}@h:1/0"}) + "\n"
    )
    codes: dict[tuple[str, str], int] = {}
    for name, env in scenarios(redis_factory, tmp_path).items():
        for command in sorted(set(COMMANDS) & set(INVOCATIONS)):
            for args in INVOCATIONS[command]:
                argv = [arg.format(log=log) for arg in args]
                result = run_cointoss(argv, env, timeout=120)
                output = result.stdout + result.stderr
                assert SECRET not in output, (name, argv, output)
                assert WRONG not in output, (name, argv, output)
                assert "Traceback" not in output, (name, argv, output)
                codes[name, command] = result.returncode
    for (name, command), code in codes.items():
        if command in ("exec", "toss"):  # the scenarios really succeed and fail as named
            assert code == (0 if name.startswith("ok-") else EXPECTED_FAILURE[name]), name


EXPECTED_FAILURE = {
    "fail-new-dead": 69,
    "fail-old-dead": 69,
    "fail-wrong-password": 78,  # a refused login is configuration, not an outage
    "fail-bad-weight": 78,
    "fail-bad-option": 78,
    "fail-both-set": 78,
    "fail-bad-scheme": 78,
    "fail-userinfo-without-colon": 78,  # redis-py logs in as that user, which the server refuses
}
