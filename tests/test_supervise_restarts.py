"""Restarts and monitoring with real processes: backoff and its limit, a stop during backoff, stats, the RSS limit."""

from __future__ import annotations

import os
import signal
import sys

from tests.supervise_support import recorder, starts, supervise_env, wait_until

COUNTING_FAILURE = 'echo start >> "$0"; exit 3'


def test_failing_child_is_restarted_with_backoff_then_the_supervisor_gives_up(supervised, tmp_path):
    """MAX_RESTARTS=2: three lives 1 s then 2 s apart, then exit with the child's own code."""
    lives = tmp_path / "lives"
    env = supervise_env({"MIGRATION_MAX_RESTARTS": "2"})
    sup = supervised(["sh", "-c", COUNTING_FAILURE, str(lives)], env)
    assert sup.wait() == 3
    assert lives.read_text().split() == ["start"] * 3
    assert [e["delay_s"] for e in sup.events("restart_scheduled")] == [1.0, 2.0]
    (limit,) = sup.events("restart_limit_reached")
    assert (limit["exit_code"], limit["restarts_in_window"]) == (3, 2)
    assert len(sup.events("redis_selected")) == 3  # each life is tossed and logged


def test_max_restarts_zero_means_never_restart(supervised, tmp_path):
    """MAX_RESTARTS=0: the first failure ends the supervisor with its code."""
    lives = tmp_path / "lives"
    sup = supervised(["sh", "-c", COUNTING_FAILURE, str(lives)], supervise_env())
    assert sup.wait() == 3
    assert lives.read_text().split() == ["start"]
    assert sup.events("restart_scheduled") == []


def test_a_clean_exit_is_not_restarted(supervised, tmp_path):
    """Exit 0 is a deliberate end: the supervisor exits 0 without restarting, whatever the budget."""
    lives = tmp_path / "lives"
    env = supervise_env({"MIGRATION_MAX_RESTARTS": "5"})
    sup = supervised(["sh", "-c", 'echo start >> "$0"', str(lives)], env)
    assert sup.wait() == 0
    assert lives.read_text().split() == ["start"]


def test_killed_child_is_restarted_and_the_new_one_serves_signals(supervised, tmp_path):
    """A worker killed from outside (137) comes back after 1 s and the new one gets the stop."""
    start_file, record = tmp_path / "starts", tmp_path / "signals"
    env = supervise_env({"MIGRATION_MAX_RESTARTS": "3"})
    sup = supervised(recorder(record, "--starts", str(start_file), "--exit-code", "7"), env)
    first = wait_until(lambda: starts(start_file), what="first life")[0]
    os.kill(first["pid"], signal.SIGKILL)
    second = wait_until(lambda: len(starts(start_file)) == 2 and starts(start_file)[1])
    assert second["pid"] != first["pid"] and second["ppid"] == sup.pid
    (scheduled,) = sup.events("restart_scheduled")
    assert (scheduled["exit_code"], scheduled["delay_s"]) == (137, 1.0)
    sup.send(signal.SIGTERM)
    assert sup.wait() == 7


def test_stop_during_backoff_exits_at_once_with_the_last_code(supervised, tmp_path):
    """TERM while waiting to restart: no new life is started and the failure's code is returned."""
    lives = tmp_path / "lives"
    env = supervise_env({"MIGRATION_MAX_RESTARTS": "5"})
    sup = supervised(["sh", "-c", 'echo start >> "$0"; exit 9', str(lives)], env)
    sup.wait_event("restart_scheduled")
    sup.send(signal.SIGTERM)
    assert sup.wait() == 9
    assert lives.read_text().split() == ["start"]
    assert sup.events("signal_not_forwarded")[0]["signal"] == "SIGTERM"


def test_worker_stats_are_sampled(supervised, tmp_path):
    """worker_stats carries RSS, CPU %, threads and descendants every MIGRATION_STATS_INTERVAL."""
    script = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    env = supervise_env({"MIGRATION_STATS_INTERVAL": "0.3"})
    sup = supervised([sys.executable, "-c", script], env)
    stats = wait_until(
        lambda: [e for e in sup.events("worker_stats") if e["descendants"] == 1],
        what="a sample that sees the worker's helper",
    )[-1]
    assert stats["rss_bytes"] > 1024 * 1024
    assert stats["tree_rss_bytes"] >= stats["rss_bytes"]
    assert stats["threads"] >= 1 and stats["descendants"] == 1
    assert 0 <= stats["cpu_percent"] <= 200
    assert stats["side"] == "new"


def test_rss_limit_restarts_the_worker_gracefully(supervised, tmp_path):
    """Past MIGRATION_MAX_RSS the worker gets TERM, is started again, and this is not counted as a crash."""
    start_file, record = tmp_path / "starts", tmp_path / "signals"
    command = recorder(record, "--starts", str(start_file), "--allocate-mib", "64")
    env = supervise_env({"MIGRATION_STATS_INTERVAL": "0.3", "MIGRATION_MAX_RSS": "40MiB"})
    sup = supervised(command, env)
    exceeded = sup.wait_event("rss_limit_exceeded")[0]
    assert exceeded["max_rss_bytes"] == 40 * 1024 * 1024 < exceeded["rss_bytes"]
    wait_until(lambda: len(starts(start_file)) >= 2, what="the worker to be started again")
    assert record.read_text().split()[0] == "SIGTERM"
    restart = sup.events("worker_restarting")[0]
    assert restart["reason"] == "rss_limit"
    assert sup.events("restart_scheduled") == []  # graceful, not a crash
    sup.send(signal.SIGTERM)
    assert sup.wait() == 0
