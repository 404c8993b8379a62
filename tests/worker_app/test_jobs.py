"""The job format and the retry rules, as pure functions (no Redis needed)."""

from __future__ import annotations

import base64
import json
import re
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker_app import keys
from worker_app.config import ConfigError, load_config, parse_queues
from worker_app.heartbeat import process_info
from worker_app.jobs import (
    JobFormatError,
    build_job,
    dump_job,
    load_job,
    normalize,
    timestamp_s,
)
from worker_app.retries import Failure, backoff_seconds, compress_backtrace, max_retries, on_failure
from worker_app.scheduler import poll_delay

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_new_job_has_rubys_perform_async_key_order_and_float_timestamps() -> None:
    """An immediate job's keys come in the order Ruby's perform_async writes them."""
    job = build_job("RecordJob", [1, "two"])
    assert list(job) == ["retry", "queue", "args", "class", "jid", "created_at"]
    assert re.fullmatch(r"[0-9a-f]{24}", job["jid"])
    assert isinstance(job["created_at"], float)


def test_scheduled_job_puts_class_before_args_like_perform_in() -> None:
    """A scheduled job's keys follow Ruby's perform_in order (class before args)."""
    assert list(build_job("NoopJob", [], scheduled=True)) == [
        "retry",
        "queue",
        "class",
        "args",
        "jid",
        "created_at",
    ]


def test_dump_is_compact_raw_utf8_with_unescaped_slash() -> None:
    """Serialisation matches Ruby's JSON.generate bytes for non-ASCII, slashes and controls."""
    raw = dump_job({"args": ["é / </script>", "\u2028", "\x1f", "\t"], "n": 1795819381.0727038})
    assert (
        raw == '{"args":["é / </script>","\u2028","\\u001f","\\t"],"n":1795819381.0727038}'.encode()
    )


def test_nan_is_refused_as_ruby_refuses_it() -> None:
    """NaN cannot be written: Ruby's generator raises on it, so a job holding it is invalid."""
    with pytest.raises(JobFormatError):
        dump_job({"args": [float("nan")]})


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_load_then_dump_gives_back_the_same_bytes(job: dict[str, object]) -> None:
    """Parsing and re-serialising a payload is byte-identical (key order kept)."""
    raw = dump_job(job)
    assert dump_job(load_job(raw)) == raw


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1,2]", b'"text"', b"\xff\xfe", b"", b'{"args":[NaN]}']
)
def test_load_rejects_what_is_not_a_json_object(raw: bytes) -> None:
    """Anything but a JSON object is a JobFormatError, never another exception."""
    with pytest.raises(JobFormatError):
        load_job(raw)


def test_normalize_adds_rubys_defaults_first_and_drops_at() -> None:
    """A bare member moved by the poller gets retry/queue first, a jid, created_at, no `at`."""
    job = normalize({"class": "X", "args": [], "at": 1.0})
    assert list(job)[:4] == ["retry", "queue", "class", "args"]
    assert job["retry"] is True and job["queue"] == "default" and "at" not in job
    assert len(job["jid"]) == 24


def test_normalize_rejects_a_job_without_an_args_array() -> None:
    """`args` must be an array, as Sidekiq's validate demands."""
    with pytest.raises(JobFormatError):
        normalize({"class": "X", "args": "1"})


def _fail(job: dict[str, object], at: float = 1000.0, jitter: int = 0):  # type: ignore[no-untyped-def]
    return on_failure(job, Failure("RuntimeError", "boom"), "default", at, jitter)


def test_first_failure_adds_sidekiqs_fields_in_order() -> None:
    """The first failure appends error_message, error_class, failed_at, retry_count=0."""
    outcome = _fail({"retry": True, "queue": "default", "args": [], "class": "FailJob", "jid": "j"})
    job = json.loads(outcome.payload)
    assert outcome.target == "retry"
    assert list(job)[-4:] == ["error_message", "error_class", "failed_at", "retry_count"]
    assert job["retry_count"] == 0 and job["failed_at"] == 1000.0
    assert outcome.score == 1000.0 + 15


def test_later_failure_increments_count_and_sets_retried_at() -> None:
    """A retried job gets retried_at and retry_count+1, and a longer backoff."""
    first = json.loads(_fail({"retry": True, "args": [], "class": "F"}).payload)
    outcome = _fail(first, at=2000.0, jitter=3)
    job = json.loads(outcome.payload)
    assert job["retry_count"] == 1 and job["retried_at"] == 2000.0 and job["failed_at"] == 1000.0
    assert outcome.score == 2000.0 + 1 + 15 + 3 * 2


@pytest.mark.parametrize("count", [0, 1, 5, 24])
def test_backoff_is_count_to_the_fourth_plus_15_plus_jitter(count: int) -> None:
    """Sidekiq 6's formula: count**4 + 15 + rand(10)*(count+1)."""
    assert backoff_seconds(count, 9) == count**4 + 15 + 9 * (count + 1)


def test_retry_zero_goes_straight_to_dead() -> None:
    """retry: 0 is truthy in Ruby with a limit of 0 retries, so the job dies at once."""
    assert _fail({"retry": 0, "args": [], "class": "F"}).target == "dead"


def test_retry_false_drops_the_job() -> None:
    """retry: false means neither retry nor dead set."""
    assert _fail({"retry": False, "args": [], "class": "F"}).target == "drop"


def test_integer_retry_limits_the_attempts() -> None:
    """retry: 2 allows two retries; the third failure goes to dead."""
    job: dict[str, object] = {"retry": 2, "args": [], "class": "F"}
    targets = []
    for _ in range(3):
        outcome = _fail(job)
        targets.append(outcome.target)
        job = json.loads(outcome.payload)
    assert targets == ["retry", "retry", "dead"]


def test_true_means_25_retries_not_one() -> None:
    """`true` is not an Integer in Ruby, so it means the default 25."""
    assert max_retries(True) == 25 and max_retries(3) == 3


def test_dead_false_skips_the_morgue() -> None:
    """dead: false drops an exhausted job instead of burying it."""
    assert _fail({"retry": 0, "dead": False, "args": [], "class": "F"}).target == "drop"


def test_retry_queue_overrides_the_queue_on_failure() -> None:
    """retry_queue routes the retry elsewhere, as in Sidekiq."""
    job = json.loads(_fail({"retry_queue": "low", "queue": "q", "args": [], "class": "F"}).payload)
    assert job["queue"] == "low"


def test_error_message_is_truncated_to_10000_chars() -> None:
    """Sidekiq keeps at most 10,000 characters of the message."""
    outcome = on_failure({"args": [], "class": "F"}, Failure("E", "x" * 20_000), "q", 1.0, 0)
    assert len(json.loads(outcome.payload)["error_message"]) == 10_000


def test_backtrace_is_stored_as_rubys_base64_of_deflated_json() -> None:
    """error_backtrace decodes as Ruby's unpack1('m') + Zlib.inflate would, 60-char lines."""
    lines = [f"line {i} " + "x" * 30 for i in range(20)]
    encoded = compress_backtrace(lines)
    assert all(len(row) <= 60 for row in encoded.splitlines())
    assert json.loads(zlib.decompress(base64.b64decode(encoded))) == lines
    outcome = on_failure(
        {"backtrace": 2, "args": [], "class": "F"}, Failure("E", "m", tuple(lines)), "q", 1.0, 0
    )
    stored = json.loads(outcome.payload)["error_backtrace"]
    assert json.loads(zlib.decompress(base64.b64decode(stored))) == lines[:2]


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (b"1795983482.0805328", 1795983482.0805328),  # 6.x/7.x: float seconds
        (b"1795983482.0", 1795983482.0),  # a float without a fraction is still seconds
        (b"1795976466174", 1795976466.174),  # 8.x: integer milliseconds
        (b"1.795976466e9", 1795976466.0),  # Ruby parses an exponent as a Float too
        (b'"2026-11-29T21:00:00Z"', None),
        (b"true", None),
        (b"null", None),
    ],
)
def test_job_timestamps_are_read_as_sidekiq_8_reads_them(raw: bytes, seconds: float | None) -> None:
    """A JSON float is epoch seconds, any other number epoch milliseconds, anything else none."""
    assert timestamp_s(json.loads(raw)) == (pytest.approx(seconds) if seconds else None)


@pytest.mark.parametrize("per_second", [1000, 1.0], ids=["ms", "seconds"])
def test_retry_for_window_is_measured_from_failed_at_in_either_unit(per_second: float) -> None:
    """Past `failed_at + retry_for` the job dies; inside the window it retries, even with its
    `retry` count used up (8.1); `retry_for: 0` dies at its first failure."""
    failed_at = 1_000_000.0 * per_second
    if per_second == 1000:
        failed_at = int(failed_at)
    again = {"retry": 2, "args": [], "class": "F", "failed_at": failed_at, "retry_count": 7}
    assert _fail({**again, "retry_for": 3599}, at=1_003_600.0).target == "dead"
    assert _fail({**again, "retry_for": 3601}, at=1_003_600.0).target == "retry"
    assert _fail({"args": [], "class": "F", "retry_for": 0}).target == "dead"


def test_worker_app_writes_job_timestamps_as_float_seconds() -> None:
    """An integer would be milliseconds to Sidekiq 8, so even whole seconds are written as floats."""
    failed = _fail({"args": [], "class": "F"}, at=1000)
    assert b'"failed_at":1000.0,' in failed.payload
    again = on_failure(json.loads(failed.payload), Failure("E", "m"), "q", 2000, 0)
    assert b'"retried_at":2000.0' in again.payload
    assert dump_job(build_job("NoopJob", [], created_at=1795983481)).endswith(
        b'"created_at":1795983481.0}'
    )


@pytest.mark.parametrize(
    ("queues", "mode", "weights"),
    [
        ("critical,default", "strict", {"critical": 0, "default": 0}),
        ("critical:1,default:1", "random", {"critical": 1, "default": 1}),
        ("critical:3,default:1", "weighted", {"critical": 3, "default": 1}),
    ],
)
def test_heartbeat_info_describes_the_queues_as_a_sidekiq_capsule(
    queues: str, mode: str, weights: dict[str, int]
) -> None:
    """`capsules` (8.x), `weights` (7.x) and `queues` (6.x) agree with WORKER_QUEUES."""
    config = load_config({"WORKER_QUEUES": queues, "WORKER_CONCURRENCY": "4"})
    info = process_info(config, "h:1:abc", "h", 1, 1795983481.5)
    assert info["capsules"] == {"default": {"concurrency": 4, "mode": mode, "weights": weights}}
    assert info["weights"] == [weights] and info["queues"] == list(weights)
    assert info["concurrency"] == 4


def test_weighted_and_strict_queue_settings_parse() -> None:
    """`critical:3,default:1` is weighted; `critical,default` is strict in that order."""
    weighted = parse_queues("critical:3,default:1")
    assert (weighted.names, weighted.weights, weighted.strict) == (
        ("critical", "default"),
        (3, 1),
        False,
    )
    assert parse_queues("critical, default").strict


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"WORKER_CONCURRENCY": "lots"}, "WORKER_CONCURRENCY"),
        ({"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY"),
        ({"WORKER_QUEUES": "a:x"}, "WORKER_QUEUES"),
        ({"WORKER_QUEUES": " , "}, "WORKER_QUEUES"),
        ({"WORKER_SHUTDOWN_TIMEOUT": "-1"}, "WORKER_SHUTDOWN_TIMEOUT"),
        ({"WORKER_LOG_LEVEL": "loud"}, "WORKER_LOG_LEVEL"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    """Each unusable WORKER_* value raises ConfigError naming that variable."""
    with pytest.raises(ConfigError, match=variable):
        load_config(env)


def test_producer_url_defaults_to_redis_url() -> None:
    """Without REDIS_PRODUCER_URL the worker pushes where it consumes."""
    config = load_config({"REDIS_URL": "redis://h:1/2"})
    assert config.producer_url == "redis://h:1/2" and config.concurrency == 5


@given(
    st.from_regex(r"[a-z0-9.-]{1,12}:[0-9]{1,6}:[0-9a-f]{12}", fullmatch=True), st.text(min_size=1)
)
def test_inflight_key_round_trips_any_queue_name(identity: str, queue: str) -> None:
    """The owner and queue are recovered from an in-flight key, even for queue names with `|`."""
    assert keys.parse_inflight_key(keys.inflight_key(identity, queue)) == (identity, queue)


@given(st.floats(0.1, 100), st.integers(1, 9))
def test_poll_delay_is_sidekiqs_randomised_interval(average: float, processes: int) -> None:
    """Under 10 processes the sleep is uniform in [avg/2, 3avg/2)."""
    assert average / 2 <= poll_delay(average, processes) <= average * 1.5


def test_poll_delay_with_many_processes_is_below_the_average() -> None:
    """From 10 processes on, Sidekiq sleeps uniformly in [0, avg)."""
    assert all(0 <= poll_delay(5.0, 12) < 5.0 for _ in range(200))
