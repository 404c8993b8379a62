"""The log stream the supervisor shares with its worker: every line whole, and a stalled stream
never stalls the supervisor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO

from tests.conftest import cointoss_argv
from tests.supervise_support import recorded, recorder, starts, supervise_env, wait_until
from tests.test_supervise_worker_app import enqueue
from worker_app.logline import PIPE_BUF

JOBS = 20_000


class PipeReader:
    """Reads a process's stderr pipe as it comes, as a log driver does, counting jobs done."""

    def __init__(self, pipe: IO[bytes] | None) -> None:
        assert pipe is not None
        self._pipe = pipe
        self.chunks: list[bytes] = []
        self.jobs_done = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        partial = b""
        while chunk := os.read(self._pipe.fileno(), 65536):
            self.chunks.append(chunk)
            *complete, partial = (partial + chunk).split(b"\n")
            self.jobs_done += sum(b'"job_done"' in line for line in complete)

    def lines(self) -> list[bytes]:
        self._thread.join(60)
        return b"".join(self.chunks).splitlines()


def one_object(line: bytes) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and "event" in event


def test_a_chatty_worker_and_the_supervisor_never_tear_a_line(new_redis):
    """worker_app logs a line per job while the supervisor logs stats and forwarded signals into
    the same pipe: over 20,000 lines, every one is exactly one JSON object."""
    enqueue(new_redis.url, JOBS)
    env = supervise_env(
        {
            "MIGRATION_NEW_REDIS_URL": new_redis.url,
            "MIGRATION_STATS_INTERVAL": "0.02",
            "WORKER_CONCURRENCY": "5",
            "WORKER_POLL_INTERVAL": "0.5",
            "PYTHONUNBUFFERED": "1",  # as in the image
        }
    )
    process = subprocess.Popen(
        cointoss_argv("supervise", "--", sys.executable, "-m", "worker_app"),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    reader = PipeReader(process.stderr)
    try:
        deadline = time.monotonic() + 300
        while reader.jobs_done < JOBS and time.monotonic() < deadline:
            process.send_signal(signal.SIGWINCH)  # forwarded and logged: the supervisor talks too
            time.sleep(0.001)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    lines = reader.lines()
    torn = [line for line in lines if not one_object(line)]
    print(f"{len(torn)} torn of {len(lines)} lines")
    assert len(lines) >= JOBS and torn == []
    events = [json.loads(line)["event"] for line in lines]
    assert events.count("job_done") == JOBS
    assert events.count("signal_forwarded") > 100 and events.count("worker_stats") > 10


FILLER = b"x" * (PIPE_BUF - 1) + b"\n"


def test_a_stalled_log_pipe_does_not_stop_the_supervisor(tmp_path):
    """stderr is a pipe nobody reads, already full: the worker still starts and signals are still
    forwarded. Once the pipe is read again the held-back lines follow, whole and in order, while
    the supervisor runs; a stop ends with the worker's code, and no line was dropped."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, FILLER)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    record, start_file = tmp_path / "signals", tmp_path / "starts"
    env = supervise_env({"MIGRATION_STOP_TIMEOUT": "5"})
    process = subprocess.Popen(
        cointoss_argv(
            "supervise", "--", *recorder(record, "--starts", str(start_file), "--exit-code", "3")
        ),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=write_end,
    )
    os.close(write_end)
    try:
        wait_until(lambda: starts(start_file), what="the worker to start despite the full pipe")
        process.send_signal(signal.SIGUSR1)
        wait_until(lambda: recorded(record) == ["SIGUSR1"], what="USR1 forwarded")
        reader = PipeReader(os.fdopen(read_end, "rb"))  # the log driver is back
        wait_until(
            lambda: b'"signal_forwarded"' in b"".join(reader.chunks),
            what="the held-back lines, while the supervisor still runs",
        )
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 3
        assert recorded(record) == ["SIGUSR1", "SIGTERM"]
    finally:
        if process.poll() is None:
            process.kill()
    lines = [line for line in reader.lines() if line != FILLER.strip()]
    assert all(one_object(line) for line in lines)
    events = [json.loads(line)["event"] for line in lines]
    assert events[:3] == ["supervisor_started", "redis_selected", "worker_started"]
    assert events[-1] == "supervisor_exit" and "signal_forwarded" in events
    assert json.loads(lines[-1])["log_lines_dropped"] == 0
