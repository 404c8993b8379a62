"""`cointoss report`: counts and flags from logs written by the product's own logger and CLI."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from math import comb
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor import logs
from supervisor.errors import EX_NOINPUT
from supervisor.report.binomial import binomial_interval
from supervisor.report.logparse import iter_entries
from supervisor.report.report import (
    build_report,
    print_table,
    with_rollout,
    with_task,
    with_time,
    with_weight,
)
from supervisor.settings import Settings
from supervisor.toss.decide import Coin, OldState, decide
from supervisor.toss.identity import TaskIdentity
from supervisor.toss.selection import selected_fields
from tests.conftest import child_env, cointoss_argv, run_cointoss

NEW_URL = "redis://new.example:6379/0"
OLD_URL = "redis://:old-secret-pw@old.example:6379/0"


@dataclass
class FleetLog:
    """JSON lines as `cointoss exec` writes them, and what really happened."""

    lines: list[str]
    new: int
    old: int


def fleet_log(
    tasks: int,
    *,
    weight: float,
    family: str,
    revision: str,
    seed: int,
    real_share: float | None = None,
) -> FleetLog:
    """`tasks` decisions rendered by the product's logger; `real_share` skews the real coin."""
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    log = logs.get_logger()
    rng = random.Random(seed)
    config = Settings(new_redis_url=NEW_URL, old_redis_url=OLD_URL, new_weight=weight)
    sides: Counter[str] = Counter()
    for i in range(tasks):
        identity = TaskIdentity(
            hostname=f"ip-10-0-{i // 250}-{i % 250}",
            task_arn=f"arn:aws:ecs:eu-west-1:123456789012:task/cointoss/{family}{revision}x{i:05d}",
            family=family,
            revision=revision,
            az="eu-west-1a",
        )
        decision = decide(
            weight=weight if real_share is None else real_share,
            strategy="random",
            old=OldState.BACKLOG,
            coin=Coin(random_draw=rng.random(), sticky_draw=0.0),
            new_url=NEW_URL,
            old_url=OLD_URL,
        )
        sides[decision.side] += 1
        fields = selected_fields(config, decision, identity, "python")
        log.info("redis_selected", **{**fields, "weight": weight})
    return FleetLog(stream.getvalue().splitlines(), sides["new"], sides["old"])


def report_json(path: Path) -> dict[str, Any]:
    result = run_cointoss(["report", "--json", str(path)])
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def event(**fields: Any) -> str:
    return json.dumps({"event": "redis_selected", "weight": 0.5, "strategy": "random", **fields})


class TestThousandDecisions:
    def test_counts_match_what_was_decided_per_rollout(self, tmp_path: Path) -> None:
        """1,000 logged decisions in two rollouts, among other lines, give the true counts."""
        first = fleet_log(600, weight=0.3, family="worker", revision="7", seed=11)
        second = fleet_log(400, weight=0.5, family="worker", revision="8", seed=12)
        noise = ["Starting Sidekiq 6.4.1", '{"event": "worker_started", "pid": 1}', "{broken"]
        path = tmp_path / "fleet.log"
        path.write_text("\n".join(noise + first.lines + noise + second.lines) + "\n")

        document = report_json(path)

        assert document["input"] == {
            "records": 1006,
            "redis_selected": 1000,
            "old_drained": 0,
            "other_events": 2,
            "malformed": 0,
            "not_cointoss": 4,
        }
        by_name = {r["rollout"]: r for r in document["rollouts"]}
        assert list(by_name) == ["worker:7", "worker:8"]
        for name, truth, weight in (("worker:7", first, 0.3), ("worker:8", second, 0.5)):
            rollout = by_name[name]
            n = truth.new + truth.old
            assert (rollout["tasks"], rollout["tossed"]) == (n, n)
            assert (rollout["on_new"], rollout["on_old"]) == (truth.new, truth.old)
            assert (rollout["tossed_new"], rollout["tossed_old"]) == (truth.new, truth.old)
            assert rollout["expected_new"] == pytest.approx(n * weight)
            assert rollout["interval_new"] == list(binomial_interval(n, weight))
            assert rollout["outside_interval"] is False
            assert rollout["reasons"] == {"coin": n}

    def test_flags_a_split_outside_the_interval(self, tmp_path: Path) -> None:
        """Logs that claim weight 0.5 while 62 % of tasks went NEW are flagged, in JSON and table."""
        skewed = fleet_log(1000, weight=0.5, family="worker", revision="9", seed=3, real_share=0.62)
        path = tmp_path / "skewed.log"
        path.write_text("\n".join(skewed.lines) + "\n")

        rollout = report_json(path)["rollouts"][0]
        assert rollout["tossed_new"] == skewed.new
        assert not rollout["interval_new"][0] <= skewed.new <= rollout["interval_new"][1]
        assert rollout["outside_interval"] is True
        table = run_cointoss(["report", str(path)])
        assert table.returncode == 0
        assert "OUTSIDE" in table.stdout and "worker:9" in table.stdout


class TestInputShapes:
    def test_filter_log_events_pages_and_insights_csv_give_the_same_report(
        self, tmp_path: Path
    ) -> None:
        """JSON lines, concatenated filter-log-events pages and both CSV exports agree."""
        fleet = fleet_log(120, weight=0.5, family="worker", revision="3", seed=5)
        lines = [*fleet.lines, "plain worker output"]
        (tmp_path / "lines.log").write_text("\n".join(lines) + "\n")
        pages = [
            {
                "events": [
                    {"logStreamName": "cointoss/worker/abc", "timestamp": 1, "message": line}
                    for line in lines[i : i + 50]
                ],
                "searchedLogStreams": [],
            }
            for i in range(0, len(lines), 50)
        ]
        (tmp_path / "filter.json").write_text(
            "".join(json.dumps(p, indent=2) + "\n" for p in pages)
        )
        with (tmp_path / "insights.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["@timestamp", "@message"])
            writer.writerows(["2026-11-27 23:00:00.000", line] for line in lines)
        with (tmp_path / "fields.csv").open("w", newline="") as handle:
            columns = ["@timestamp", "event", "side", "reason", "weight", "task_arn", "rollout"]
            writer = csv.DictWriter(handle, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows({**json.loads(line), "@timestamp": "x"} for line in fleet.lines)

        reports = {
            name: report_json(tmp_path / name)["rollouts"]
            for name in ("lines.log", "filter.json", "insights.csv", "fields.csv")
        }
        expected = reports["lines.log"]
        assert expected[0]["tossed_new"] == fleet.new
        for name in ("filter.json", "insights.csv"):
            assert reports[name] == expected, name
        fields = reports["fields.csv"][0]
        assert (fields["tasks"], fields["tossed_new"], fields["tossed_old"]) == (
            120,
            fleet.new,
            fleet.old,
        )

    def test_reads_stdin_when_no_file_is_given(self) -> None:
        """With no FILE the report reads standard input."""
        text = "\n".join([event(side="new", reason="coin", task_arn="t1"), "noise"]) + "\n"
        result = subprocess.run(
            [*cointoss_argv("report", "--json")],
            input=text,
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["input"]["redis_selected"] == 1 and document["input"]["not_cointoss"] == 1

    def test_unreadable_file_is_one_line_and_exit_66(self, tmp_path: Path) -> None:
        """A missing file or a directory gives one `cointoss:` line and EX_NOINPUT."""
        for name in (tmp_path / "missing.log", tmp_path):
            result = run_cointoss(["report", str(name)])
            assert result.returncode == EX_NOINPUT == 66
            assert result.stdout == ""
            assert result.stderr.count("\n") == 1 and result.stderr.startswith("cointoss: report: ")
            assert str(name) in result.stderr

    def test_invalid_utf8_and_empty_input_are_counted_not_fatal(self, tmp_path: Path) -> None:
        """Bytes that are not UTF-8 are one not-cointoss line; an empty file reports nothing."""
        (tmp_path / "bad.log").write_bytes(
            b"\xff\xfe\x00garbage\n" + event(side="old", reason="coin").encode() + b"\n"
        )
        (tmp_path / "empty.log").write_bytes(b"")
        document = report_json(tmp_path / "bad.log")
        assert document["input"]["not_cointoss"] == 1 and document["input"]["redis_selected"] == 1
        assert report_json(tmp_path / "empty.log")["rollouts"] == []


class TestDefinitions:
    def test_a_restarted_supervised_task_is_one_task_on_its_latest_side(self) -> None:
        """Same hostname:pid logging coin->OLD then old_drained->NEW: one task, now NEW, tossed OLD."""
        lines = [
            event(
                side="old", reason="coin", hostname="h1", pid=7, timestamp="2026-01-01T00:00:00Z"
            ),
            event(
                side="new",
                reason="old_drained",
                hostname="h1",
                pid=7,
                timestamp="2026-01-01T01:00:00Z",
            ),
        ]
        rollout = build_report(iter_entries("\n".join(reversed(lines)))).rollouts[0]
        assert (rollout.tasks, rollout.decisions, rollout.on_new, rollout.on_old) == (1, 2, 1, 0)
        assert (rollout.tossed, rollout.tossed_old) == (1, 1)
        assert rollout.reasons == {"coin": 1, "old_drained": 1}

    def test_overrides_are_not_judged_as_tosses(self) -> None:
        """weight_is_1 and old_unreachable choices are listed as reasons, not tossed."""
        lines = [
            event(side="new", reason="weight_is_1", task_arn="a"),
            event(side="new", reason="old_unreachable", task_arn="b"),
        ]
        rollout = build_report(iter_entries("\n".join(lines))).rollouts[0]
        assert (rollout.tasks, rollout.tossed, rollout.interval_new) == (2, 0, None)
        assert rollout.outside_interval is False

    def test_counts_tasks_that_chose_old_after_old_was_drained(self) -> None:
        """Only OLD choices strictly after the earliest drained signal count."""
        lines = [
            event(side="old", reason="coin", task_arn="early", timestamp="2026-01-01T00:59:00Z"),
            json.dumps({"event": "old_drained", "timestamp": "2026-01-01T01:00:00Z"}),
            event(side="old", reason="coin", task_arn="late", timestamp="2026-01-01T01:00:01Z"),
            event(side="new", reason="coin", task_arn="fine", timestamp="2026-01-01T01:00:02Z"),
            event(side="old", reason="coin", task_arn="untimed"),
            event(side="new", reason="old_drained", task_arn="x", timestamp="2026-01-01T02:00:00Z"),
        ]
        report = build_report(iter_entries("\n".join(lines)))
        assert report.old_drained_at is not None and report.old_drained_at.hour == 1
        assert report.counts.old_drained == 1
        assert report.rollouts[0].old_after_drained_tasks == ["late"]

    def test_a_redis_selected_with_a_bad_side_is_malformed(self) -> None:
        """An event whose side is neither new nor old is counted as malformed, not used."""
        report = build_report(iter_entries(event(side="maybe", reason="coin")))
        assert (report.counts.malformed, report.rollouts) == (1, [])

    @pytest.mark.parametrize(
        ("record", "task"),
        [
            ({"task_arn": "arn:1", "hostname": "h", "pid": 3}, "arn:1"),
            ({"task_arn": "", "hostname": "h", "pid": 3}, "h:3"),
            ({}, "unknown"),
        ],
    )
    def test_task_is_the_arn_else_hostname_and_pid(self, record: dict[str, Any], task: str) -> None:
        """with_task prefers task_arn and falls back to hostname:pid."""
        assert with_task(record)["_task"] == task

    @pytest.mark.parametrize(
        ("record", "rollout"),
        [
            ({"rollout": "mig-42", "family": "w", "revision": "3"}, "mig-42"),
            ({"family": "w", "revision": "3"}, "w:3"),
            ({"rollout": ""}, "default"),
        ],
    )
    def test_rollout_falls_back_like_selection(self, record: dict[str, Any], rollout: str) -> None:
        """with_rollout: logged rollout, else Family:Revision, else default."""
        assert with_rollout(record)["_rollout"] == rollout

    @pytest.mark.parametrize(
        ("raw", "weight"),
        [(0.3, 0.3), ("0.5", 0.5), ("1.5", None), ("x", None), (True, None), (None, None)],
    )
    def test_weight_is_a_number_in_range(self, raw: Any, weight: float | None) -> None:
        """with_weight accepts numbers and numeric strings in [0, 1] only."""
        assert with_weight({"weight": raw})["_weight"] == weight

    def test_naive_timestamps_are_read_as_utc(self) -> None:
        """A timestamp without a zone compares with zoned ones as UTC."""
        naive = with_time({"timestamp": "2026-01-01 00:00:00"})["_time"]
        zoned = with_time({"timestamp": "2026-01-01T00:00:00Z"})["_time"]
        assert naive == zoned


class TestRealOutput:
    def test_reports_what_real_cointoss_exec_runs_logged(
        self, old_redis: Any, new_redis: Any, tmp_path: Path
    ) -> None:
        """stderr of real `cointoss exec` runs (coin, then OLD drained) is read back exactly."""
        old_redis.client().lpush("queue:default", json.dumps({"class": "NoopJob", "jid": "j1"}))
        base = {
            "MIGRATION_NEW_REDIS_URL": new_redis.url,
            "MIGRATION_OLD_REDIS_URL": old_redis.url,
            "MIGRATION_NEW_WEIGHT": "0.5",
            "MIGRATION_LOG_FORMAT": "json",
            "MIGRATION_ROLLOUT_ID": "mig-1",
        }
        stderr = []
        sides = Counter()
        for run in range(8):
            if run == 5:
                old_redis.client().flushall()  # OLD drained: the remaining runs pick NEW for that
            result = run_cointoss(["exec", "--", "sh", "-c", 'echo "$MIGRATION_CHOICE"'], base)
            assert result.returncode == 0, result.stderr
            sides[result.stdout.strip()] += 1
            stderr.append(result.stderr)
        path = tmp_path / "real.log"
        path.write_text("".join(stderr))

        document = report_json(path)
        rollout = document["rollouts"][0]
        assert document["input"]["redis_selected"] == 8
        assert rollout["rollout"] == "mig-1"
        assert rollout["tasks"] == 8  # no ECS: every exec is its own hostname:pid
        assert (rollout["on_new"], rollout["on_old"]) == (sides["new"], sides["old"])
        assert rollout["reasons"] == {"coin": 5, "old_drained": 3}
        assert rollout["tossed"] == 5
        assert document["old_drained_at"] is not None
        assert "old-secret" not in path.read_text()


class TestBinomialInterval:
    def test_a_fair_coin_over_1000_tasks(self) -> None:
        """Binomial(1000, 0.5): 469..531, checked against exact rational tail sums."""
        low, high = binomial_interval(1000, 0.5)
        assert (low, high) == (469, 531)
        below = sum(Fraction(comb(1000, k), 2**1000) for k in range(low))
        assert below <= Fraction(1, 40) < below + Fraction(comb(1000, low), 2**1000)

    @given(st.integers(1, 60), st.integers(1, 99))
    def test_tails_hold_and_are_tight(self, n: int, percent: int) -> None:
        """Each tail outside [low, high] has at most 2.5 %, and neither end could move inward."""
        p = Fraction(percent, 100)
        pmf = [comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
        low, high = binomial_interval(n, percent / 100)
        tail = Fraction(1, 40)
        assert sum(pmf[:low]) <= tail and sum(pmf[high + 1 :]) <= tail
        assert sum(pmf[: low + 1]) > tail * (1 - Fraction(1, 10**9))
        assert sum(pmf[high:]) > tail * (1 - Fraction(1, 10**9))

    def test_certain_outcomes(self) -> None:
        """Weight 0 and 1 leave no room; zero tasks give an empty split."""
        assert binomial_interval(50, 0.0) == (0, 0)
        assert binomial_interval(50, 1.0) == (50, 50)
        assert binomial_interval(0, 0.5) == (0, 0)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


class TestRobustness:
    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(max_size=2000))
    def test_any_bytes_never_crash_and_every_entry_is_counted(self, data: bytes) -> None:
        """Whatever the bytes, parsing, folding and both renderings finish, and counts add up."""
        report = build_report(iter_entries(data.decode("utf-8", errors="replace")))
        c = report.counts
        assert (
            c.records
            == c.redis_selected + c.old_drained + c.other_events + c.malformed + c.not_cointoss
        )
        json.dumps(report.to_json())

    @settings(max_examples=120, deadline=None)
    @given(
        st.lists(
            st.fixed_dictionaries(
                {"event": st.sampled_from(["redis_selected", "old_drained", "other"])},
                optional={
                    key: JSON_VALUES
                    for key in (
                        "side",
                        "reason",
                        "weight",
                        "task_arn",
                        "hostname",
                        "pid",
                        "rollout",
                        "family",
                        "revision",
                        "timestamp",
                        "strategy",
                    )
                },
            ),
            max_size=20,
        ),
        st.sampled_from(["lines", "filter", "csv"]),
    )
    def test_odd_field_values_never_crash(self, events: list[dict[str, Any]], shape: str) -> None:
        """Events with any JSON values, in any input shape, fold and render without error."""
        lines = [json.dumps(e) for e in events]
        if shape == "lines":
            text = "\n".join(lines)
        elif shape == "filter":
            text = json.dumps({"events": [{"message": line} for line in lines]}, indent=1)
        else:
            buffer = io.StringIO()
            csv.writer(buffer).writerows(
                [["@timestamp", "@message"], *(["t", line] for line in lines)]
            )
            text = buffer.getvalue()
        report = build_report(iter_entries(text))
        assert report.counts.records == len(events)
        json.dumps(report.to_json())
        print_table(report)

    @given(st.text(max_size=300))
    def test_any_text_yields_only_events_or_not_cointoss_markers(self, text: str) -> None:
        """Every entry is None or a dict whose `event` is a string, never anything half-parsed."""
        for entry in iter_entries(text):
            assert entry is None or isinstance(entry.get("event"), str)


def test_report_module_does_not_import_rich_until_it_prints() -> None:
    """rich stays out of the import of report (and so of cli) until a table is drawn."""
    code = "import sys, supervisor.cli, supervisor.report.report; assert 'rich' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], env=child_env(), timeout=60).returncode == 0
