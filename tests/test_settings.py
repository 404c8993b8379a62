"""The MIGRATION_* contract: defaults, accepted forms, _FILE twins, and one-line errors (78)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.cli import main
from supervisor.errors import ConfigError
from supervisor.settings import load_settings, parse_weight

NEW = "redis://127.0.0.1:6390/0"
OLD = "redis://127.0.0.1:6391/0"
BASE = {"MIGRATION_NEW_REDIS_URL": NEW, "MIGRATION_OLD_REDIS_URL": OLD}


@contextlib.contextmanager
def migration_env(values: Mapping[str, str]) -> Iterator[None]:
    """os.environ with exactly these MIGRATION_* variables (hypothesis cannot use monkeypatch)."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("MIGRATION_")]:
        del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load(values: Mapping[str, str]):
    with migration_env(values):
        return load_settings()


def config_error(values: Mapping[str, str]) -> str:
    with migration_env(values), pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.exit_code == 78
    return str(caught.value)


def test_defaults_match_design() -> None:
    """Two URLs are enough; every other setting takes its documented default."""
    s = load(BASE)
    assert (s.new_redis_url, s.old_redis_url) == (NEW, OLD)
    assert (s.new_weight, s.strategy, s.seed, s.rollout_id) == (0.5, "random", None, None)
    assert (s.export_as, s.producer_export_as) == (["REDIS_URL"], ["REDIS_PRODUCER_URL"])
    assert (s.prefer_new_when_drained, s.old_unreachable) == (True, "new")
    assert (s.queue_layout, s.key_prefix, s.log_format) == ("sidekiq", "", "auto")
    assert (s.stop_timeout, s.max_restarts, s.restart_window, s.stats_interval) == (25, 5, 300, 60)
    assert (s.max_rss, s.drain_check_interval, s.drain_confirmations, s.auto_migrate) == (
        None,
        30,
        3,
        False,
    )
    assert s.forward_to_group is False


@pytest.mark.parametrize(
    ("raw", "weight"),
    [
        ("0", 0.0),
        ("1", 1.0),
        ("0.3", 0.3),
        (" .25 ", 0.25),
        ("30%", 0.3),
        ("100%", 1.0),
        ("0%", 0.0),
        ("12.5 %", 0.125),
        ("1e-1", 0.1),
    ],
)
def test_weight_accepts_numbers_and_percentages(raw: str, weight: float) -> None:
    """A weight is a number in [0, 1] or a percentage."""
    assert load({**BASE, "MIGRATION_NEW_WEIGHT": raw}).new_weight == pytest.approx(weight)


@pytest.mark.parametrize(
    "raw", ["1e-400", "0.99999999999999999999", "1e-400%", "99.999999999999999999%", "-1e-400"]
)
def test_a_weight_that_rounds_to_0_or_1_is_78(raw: str) -> None:
    """0 and 1 turn the coin off; 1e-400 is neither, so it must not silently become 0."""
    message = config_error({**BASE, "MIGRATION_NEW_WEIGHT": raw})
    assert message.startswith(f"MIGRATION_NEW_WEIGHT: {raw!r} is too close to ")


@given(written=st.decimals(min_value=0, max_value=1, allow_nan=False, places=None))
def test_a_weight_is_0_or_1_only_when_written_so(written: Decimal) -> None:
    """Any weight in [0, 1], written however: accepted as exactly 0 or 1 only if it is."""
    text = str(written)
    try:
        weight = parse_weight(text)
    except ValueError as exc:
        assert "too close" in str(exc)
        assert 0 < written < 1
    else:
        assert (weight == 0) == (written == 0)
        assert (weight == 1) == (written == 1)


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("MIGRATION_WEIGHT", "MIGRATION_NEW_WEIGHT"),
        ("MIGRATION_BOGUS_SETTING", None),
        ("MIGRATION_NEW_WIEGHT", "MIGRATION_NEW_WEIGHT"),
        ("MIGRATION_OLD_REDIS_URL_FIEL", "MIGRATION_OLD_REDIS_URL_FILE"),
        ("migration_strategie", "MIGRATION_STRATEGY"),
    ],
)
def test_an_unknown_migration_variable_is_78_naming_the_closest(
    name: str, closest: str | None
) -> None:
    """A misspelled setting would be ignored for its default: one line naming it instead."""
    message = config_error({**BASE, name: "1"})
    assert message.startswith(f"{name.upper()}: is not a cointoss setting (closest: MIGRATION_")
    assert closest is None or f"(closest: {closest})" in message
    assert "\n" not in message


def test_names_cointoss_itself_writes_or_reads_are_not_unknown(tmp_path: Path) -> None:
    """MIGRATION_CHOICE (set in the worker's environment) and the _FILE twins are accepted."""
    url_file = tmp_path / "old-url"
    url_file.write_text(OLD)
    env = {"MIGRATION_NEW_REDIS_URL": NEW, "MIGRATION_OLD_REDIS_URL_FILE": str(url_file)}
    assert load({**env, "MIGRATION_CHOICE": "old"}).old_redis_url == OLD


def test_old_url_is_optional_only_at_weight_one() -> None:
    """After cut-over (weight 1) OLD may be gone from the config; below 1 it is required."""
    assert load({"MIGRATION_NEW_REDIS_URL": NEW, "MIGRATION_NEW_WEIGHT": "1"}).old_redis_url is None
    message = config_error({"MIGRATION_NEW_REDIS_URL": NEW, "MIGRATION_NEW_WEIGHT": "0"})
    assert message.startswith("MIGRATION_OLD_REDIS_URL: is required")


def test_every_other_setting_is_read() -> None:
    """Each variable reaches its field, in the forms the README documents."""
    s = load(
        {
            **BASE,
            "MIGRATION_STRATEGY": "even",
            "MIGRATION_SEED": "42",
            "MIGRATION_ROLLOUT_ID": "r-7",
            "MIGRATION_EXPORT_AS": "REDIS_URL, SIDEKIQ_REDIS_URL",
            "MIGRATION_PRODUCER_EXPORT_AS": "PRODUCER_URL",
            "MIGRATION_PREFER_NEW_WHEN_DRAINED": "false",
            "MIGRATION_OLD_UNREACHABLE": "fail",
            "MIGRATION_QUEUE_LAYOUT": "none",
            "MIGRATION_KEY_PREFIX": "myapp:",
            "MIGRATION_LOG_FORMAT": "console",
            "MIGRATION_STOP_TIMEOUT": "50",
            "MIGRATION_MAX_RESTARTS": "0",
            "MIGRATION_RESTART_WINDOW": "60",
            "MIGRATION_STATS_INTERVAL": "5",
            "MIGRATION_MAX_RSS": "512MiB",
            "MIGRATION_DRAIN_CHECK_INTERVAL": "2.5",
            "MIGRATION_DRAIN_CONFIRMATIONS": "1",
            "MIGRATION_AUTO_MIGRATE": "true",
            "MIGRATION_FORWARD_TO_GROUP": "true",
        }
    )
    assert (s.strategy, s.seed, s.rollout_id) == ("even", 42, "r-7")
    assert (s.export_as, s.producer_export_as) == (
        ["REDIS_URL", "SIDEKIQ_REDIS_URL"],
        ["PRODUCER_URL"],
    )
    assert (s.prefer_new_when_drained, s.old_unreachable, s.queue_layout) == (False, "fail", "none")
    assert (s.key_prefix, s.log_format, s.stop_timeout, s.max_restarts) == (
        "myapp:",
        "console",
        50,
        0,
    )
    assert (s.restart_window, s.stats_interval, s.max_rss) == (60, 5, 512 * 1024 * 1024)
    assert (s.drain_check_interval, s.drain_confirmations, s.auto_migrate) == (2.5, 1, True)
    assert s.forward_to_group is True


def test_tls_acl_and_unix_urls_are_accepted() -> None:
    """rediss:// with ACL user and CA file, and unix sockets, are valid URLs everywhere."""
    tls = "rediss://worker:p%40ss@cache.example.com:6380/0?ssl_ca_certs=/etc/ca.pem"
    assert load({**BASE, "MIGRATION_NEW_REDIS_URL": tls}).new_redis_url == tls
    sock = "unix:///run/redis.sock?db=2"
    assert load({**BASE, "MIGRATION_OLD_REDIS_URL": sock}).old_redis_url == sock


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("MIGRATION_NEW_WEIGHT", "abc", "'abc' is not a number"),
        ("MIGRATION_NEW_WEIGHT", "1.5", "out of range"),
        ("MIGRATION_NEW_WEIGHT", "-0.1", "out of range"),
        ("MIGRATION_NEW_WEIGHT", "150%", "out of range"),
        ("MIGRATION_NEW_WEIGHT", "nan", "out of range"),
        ("MIGRATION_NEW_WEIGHT", "", "is not a number"),
        ("MIGRATION_STRATEGY", "sometimes", "random, sticky or even"),
        ("MIGRATION_SEED", "lucky", "an integer"),
        ("MIGRATION_EXPORT_AS", "REDIS URL", "not a valid environment variable name"),
        ("MIGRATION_PRODUCER_EXPORT_AS", "1ST", "not a valid environment variable name"),
        ("MIGRATION_EXPORT_AS", "", "names no variable"),
        ("MIGRATION_PRODUCER_EXPORT_AS", " , ", "names no variable"),
        ("MIGRATION_PREFER_NEW_WHEN_DRAINED", "perhaps", "true or false"),
        ("MIGRATION_OLD_UNREACHABLE", "ignore", "new or fail"),
        ("MIGRATION_QUEUE_LAYOUT", "resque", "sidekiq, celery, rq or none"),
        ("MIGRATION_LOG_FORMAT", "xml", "auto, json or console"),
        ("MIGRATION_STOP_TIMEOUT", "0", "above 0"),
        ("MIGRATION_MAX_RESTARTS", "-1", "0 or more"),
        ("MIGRATION_DRAIN_CONFIRMATIONS", "0", "1 or more"),
        ("MIGRATION_MAX_RSS", "lots", "a size in bytes"),
        ("MIGRATION_AUTO_MIGRATE", "kinda", "true or false"),
        ("MIGRATION_FORWARD_TO_GROUP", "sometimes", "true or false"),
        ("MIGRATION_NEW_REDIS_URL", "http://:SeKr1t@h:1/0", "unsupported scheme"),
        ("MIGRATION_NEW_REDIS_URL", "redis://:SeKr1t@h:99999/0", "bad port"),
        ("MIGRATION_NEW_REDIS_URL", "redis://:SeKr1t@[::1/0", "not a valid URL"),
        ("MIGRATION_OLD_REDIS_URL", "redis://:SeKr1t@h:6379/zero", "not a number"),
        ("MIGRATION_OLD_REDIS_URL", "redis://:SeKr1t@:6379/0", "has no host"),
        ("MIGRATION_OLD_REDIS_URL", "unix://:SeKr1t@", "no socket path"),
        ("MIGRATION_NEW_REDIS_URL", "", "is empty"),
        ("MIGRATION_NEW_REDIS_URL", "  ", "is empty"),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(name: str, value: str, fragment: str) -> None:
    """Each bad value gives one line: the variable, what was wrong, what is accepted; no secret."""
    message = config_error({**BASE, name: value})
    assert message.startswith(f"{name}: ")
    assert fragment in message
    assert "; accepted: " in message
    assert "\n" not in message
    assert "SeKr1t" not in message


def test_missing_new_url_is_named() -> None:
    """Without NEW nothing can be decided: exit 78 naming MIGRATION_NEW_REDIS_URL."""
    assert config_error({"MIGRATION_OLD_REDIS_URL": OLD}).startswith(
        "MIGRATION_NEW_REDIS_URL: is required"
    )


class TestFileVariants:
    def test_file_holds_the_value_minus_one_trailing_newline(self, tmp_path: Path) -> None:
        """NAME_FILE's content is the value; the newline an editor or `echo` adds is dropped."""
        (tmp_path / "new").write_text("rediss://app:f1le-secret@h:6380/0\n")
        (tmp_path / "old").write_text(OLD)
        s = load(
            {
                "MIGRATION_NEW_REDIS_URL_FILE": str(tmp_path / "new"),
                "MIGRATION_OLD_REDIS_URL_FILE": str(tmp_path / "old"),
            }
        )
        assert (s.new_redis_url, s.old_redis_url) == ("rediss://app:f1le-secret@h:6380/0", OLD)

    def test_setting_both_is_an_error(self, tmp_path: Path) -> None:
        """NAME and NAME_FILE together are ambiguous: refused, as the official images do."""
        (tmp_path / "new").write_text(NEW)
        message = config_error({**BASE, "MIGRATION_NEW_REDIS_URL_FILE": str(tmp_path / "new")})
        assert message.startswith("MIGRATION_NEW_REDIS_URL_FILE: set together with")

    @pytest.mark.parametrize("kind", ["missing", "directory", "binary", "endless"])
    def test_unreadable_file_is_named(self, tmp_path: Path, kind: str) -> None:
        """A missing, directory, non-text or endless file names the _FILE variable, never its
        content."""
        path = tmp_path / "secret"
        if kind == "directory":
            path.mkdir()
        elif kind == "binary":
            path.write_bytes(b"redis://:B1nary\xff\xfe@h/0")
        elif kind == "endless":
            path = Path("/dev/zero")
        message = config_error(
            {"MIGRATION_OLD_REDIS_URL": OLD, "MIGRATION_NEW_REDIS_URL_FILE": str(path)}
        )
        assert message.startswith("MIGRATION_NEW_REDIS_URL_FILE: ")
        assert "B1nary" not in message

    def test_bad_url_in_a_file_is_not_echoed(self, tmp_path: Path) -> None:
        """A malformed URL read from a file is reported without its content."""
        (tmp_path / "old").write_text("http://:F1leSecret@h/0\n")
        message = config_error(
            {"MIGRATION_NEW_REDIS_URL": NEW, "MIGRATION_OLD_REDIS_URL_FILE": str(tmp_path / "old")}
        )
        assert message.startswith("MIGRATION_OLD_REDIS_URL")
        assert "F1leSecret" not in message


# --- fuzz: whatever the environment holds, the command answers 0 or one line and 78 ----------

SECRET = "Fz7"  # every fuzzed password starts with this, so a leak is unambiguous
passwords = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=3, max_size=16
).map(lambda s: SECRET + s)
weights = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-50, max_value=150).map(lambda f: f"{f:g}%"),
    st.integers(-5, 5).map(str),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
)


def mostly(valid: list[str], invalid: list[str]) -> st.SearchStrategy[str]:
    """Valid parts four times out of five, so whole valid URLs (and the success path) are common."""
    return st.sampled_from(valid * (4 * max(len(invalid), 1)) + invalid * len(valid))


@st.composite
def urls(draw: st.DrawFn, password: str) -> str:
    scheme = draw(mostly(["redis", "rediss"], ["unix", "http", "", "REDIS"]))
    user = draw(st.sampled_from(["", "default", "app"]))
    auth = draw(st.sampled_from(["", f"{user}:{quote(password, safe='')}@", f":{password}@"]))
    host = draw(mostly(["127.0.0.1", "cache.example.com", "[::1]"], ["", "[::1", "h h"]))
    port = draw(st.one_of(st.none(), st.integers(1, 65535), st.integers(-1, 70_000)))
    path = draw(mostly(["", "/0", "/15"], ["/x", "/run/redis.sock"]))
    query = draw(st.sampled_from(["", "?ssl_ca_certs=/ca.pem", f"?password={quote(password)}"]))
    netloc = host + ("" if port is None else f":{port}")
    return draw(mostly([f"{scheme}://{auth}{netloc}{path}{query}"], ["", " ", "\n"]))


@st.composite
def environments(draw: st.DrawFn, tmp: Path) -> tuple[dict[str, str], list[str]]:
    """MIGRATION_* variables (URLs directly, via _FILE, both, or neither) and the passwords used."""
    env: dict[str, str] = {"MIGRATION_QUEUE_LAYOUT": "none"}  # no Redis I/O in a fuzz loop
    secrets: list[str] = []
    for name in ("MIGRATION_NEW_REDIS_URL", "MIGRATION_OLD_REDIS_URL"):
        password = draw(passwords)
        secrets += [password, quote(password, safe=""), quote(password)]
        url = draw(urls(password))
        how = draw(st.sampled_from(["direct", "file", "both", "missing-file", "unset"]))
        path = tmp / name
        if how in ("file", "both"):
            path.write_text(url + draw(st.sampled_from(["", "\n", "\n\n", " "])))
        if how in ("file", "both", "missing-file"):
            env[name + "_FILE"] = str(path if how != "missing-file" else tmp / "absent")
        if how in ("direct", "both"):
            env[name] = url
    if draw(st.booleans()):
        env["MIGRATION_NEW_WEIGHT"] = draw(weights)
    env["MIGRATION_STRATEGY"] = draw(st.sampled_from(["random", "sticky", "coin"]))
    return env, secrets


def run_main(env: Mapping[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with migration_env(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["toss"])
    return code, out.getvalue(), err.getvalue()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_settings_exit_0_or_78_with_one_line(data: st.DataObject, tmp_path: Path) -> None:
    """Any mix of weights, URLs and _FILE variables: a decision, or exit 78 with one line naming a
    variable that was set or is required; never a traceback, never a password."""
    env, secrets = data.draw(environments(tmp_path))
    code, out, err = run_main(env)
    assert code in (0, 78), err
    assert "Traceback" not in out + err
    leaked = [secret for secret in secrets if secret in out + err]
    assert not leaked, out + err
    if code == 0:
        assert json.loads(out)["side"] in ("new", "old")
    else:
        (line,) = err.splitlines()
        variable = line.removeprefix("cointoss: ").split(":")[0]
        assert variable.startswith("MIGRATION_")
        assert variable in env or variable in ("MIGRATION_NEW_REDIS_URL", "MIGRATION_OLD_REDIS_URL")
