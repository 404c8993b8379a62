"""How fast `cointoss report` reads a fleet's logs, against the floor of json.loads per line.

Usage: python benchmarks/report_speed.py [DECISIONS]   (default 200000)

Builds DECISIONS `redis_selected` lines (plus 10 % worker noise) with the product's own logger,
then times, in the same run: (a) the baseline, `json.loads` on every line; (b) the report's
parse + fold (`iter_entries` + `build_report`). Prints both and the ratio b/a.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from supervisor import logs
from supervisor.report.logparse import iter_entries
from supervisor.report.report import build_report
from supervisor.settings import Settings
from supervisor.toss.decide import Coin, OldState, decide
from supervisor.toss.identity import TaskIdentity
from supervisor.toss.selection import selected_fields

NEW_URL, OLD_URL = "redis://new:6379/0", "redis://old:6379/0"


def build_log(decisions: int) -> str:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    log = logs.get_logger()
    rng = random.Random(1)
    config = Settings(new_redis_url=NEW_URL, old_redis_url=OLD_URL, new_weight=0.5)
    for i in range(decisions):
        identity = TaskIdentity(
            hostname=f"ip-{i}", task_arn=f"arn:task/{i}", family="worker", revision=str(i % 4)
        )
        decision = decide(
            weight=0.5,
            strategy="random",
            old=OldState.BACKLOG,
            coin=Coin(rng.random(), 0.0),
            new_url=NEW_URL,
            old_url=OLD_URL,
        )
        log.info("redis_selected", **selected_fields(config, decision, identity, "python"))
        if i % 10 == 0:
            stream.write("INFO worker_app: processed job in 3 ms\n")
    return stream.getvalue()


def best_of(runs: int, action: object) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        timings.append(time.perf_counter() - start)
    return min(timings)


def baseline(text: str) -> None:
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            json.loads(line)


def main() -> None:
    decisions = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    text = build_log(decisions)
    lines = text.count("\n")
    floor = best_of(3, lambda: baseline(text))
    report_s = best_of(3, lambda: build_report(iter_entries(text)))
    print(f"{lines} lines, {len(text) / 1e6:.1f} MB")
    print(f"baseline json.loads per line: {floor:.3f} s ({lines / floor:,.0f} lines/s)")
    print(f"cointoss report parse+fold:   {report_s:.3f} s ({lines / report_s:,.0f} lines/s)")
    print(f"ratio report/baseline: {report_s / floor:.2f}")


if __name__ == "__main__":
    main()
