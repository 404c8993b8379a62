"""Torn log lines when cointoss and worker_app write to one pipe, as they do under `supervise`.

Two processes, one configured like the supervisor (`supervisor.logs`, JSON) and one like the
worker (`worker_app.logs`), each log N events as fast as they can into the same pipe, with
PYTHONUNBUFFERED=1 as in the image (the input of issue 10). This process reads the pipe as fast
as it can and counts the lines that are not exactly one JSON object with an `event`.

    python benchmarks/torn_lines.py [--lines 30000] [--code DIR]

`--code` runs the writers on another checkout of the code (e.g. the commit before a fix), so both
figures come from the same input.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
READ_CHUNK = 64 * 1024

WRITER = r"""
import sys
which, count = sys.argv[1], int(sys.argv[2])
if which == "supervisor":
    from supervisor import logs
    logs.configure("json")
else:
    from worker_app import logs
    logs.configure("info")
log = logs.get_logger()
sys.stdout.write("r"); sys.stdout.flush()
sys.stdin.read(1)  # both writers start together, whatever their start-up took
for i in range(count):
    log.info("job_done", writer=which, n=i, jid="0123456789abcdef01234567", queue="default")
"""


def parses(line: bytes) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and "event" in event


def run(code: Path, lines: int) -> tuple[int, int, float]:
    """(torn lines, all lines, seconds) for one run of the two writers on `code`."""
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONUNBUFFERED": "1"}
    read_end, write_end = os.pipe()
    started = time.monotonic()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, which, str(lines)],
            env=env,
            cwd=code,  # `-c` puts the working directory first on sys.path
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=write_end,
        )
        for which in ("supervisor", "worker_app")
    ]
    os.close(write_end)
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.read(1) == b"r"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write(b"g")
        writer.stdin.close()
    chunks = []
    while chunk := os.read(read_end, READ_CHUNK):
        chunks.append(chunk)
    os.close(read_end)
    output = b"".join(chunks)
    for writer in writers:
        if writer.wait() != 0:
            raise SystemExit(f"a writer failed with {writer.returncode}")
    seconds = time.monotonic() - started
    all_lines = output.splitlines()
    return sum(1 for line in all_lines if not parses(line)), len(all_lines), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=30_000, help="events per writer")
    parser.add_argument("--code", type=Path, default=REPO, help="checkout the writers run")
    args = parser.parse_args()
    torn, total, seconds = run(args.code.resolve(), args.lines)
    expected = 2 * args.lines
    print(
        f"{args.code}: {torn} torn of {total} lines read ({expected} events written, "
        f"{torn / max(total, 1):.2%} torn) in {seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
