"""`python -m worker_app.enqueue --class NAME --count N [--args JSON] [--in SECONDS] [--queue Q]`

Pushes to REDIS_PRODUCER_URL (else REDIS_URL) and prints one JSON summary line on stdout.
Exit codes: 0 pushed, 64 bad usage, 69 Redis unreachable, 78 bad setting.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import redis

from worker_app.client import Client
from worker_app.config import DEFAULT_REDIS_URL, EX_CONFIG
from worker_app.connection import host_of, redact

EX_USAGE = 64
EX_UNAVAILABLE = 69


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EX_USAGE, f"worker_app.enqueue: {message}\n")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(prog="python -m worker_app.enqueue", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--class", dest="job_class", required=True, help="job class name, e.g. RecordJob"
    )
    parser.add_argument("--count", type=int, default=1, help="how many jobs (default 1)")
    parser.add_argument("--args", default="[]", help="JSON array of arguments (default [])")
    parser.add_argument("--in", dest="delay", type=float, help="schedule SECONDS from now")
    parser.add_argument("--queue", default="default", help="queue name (default: default)")
    parser.add_argument("--retry", default="true", help="true, false or a number of retries")
    parser.add_argument("--print-jids", action="store_true", help="print each jid on its own line")
    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error("--count must be >= 0")
    if not args.queue:
        parser.error("--queue must not be empty")
    args.job_args = _json_array(parser, args.args)
    args.retry = _retry(parser, args.retry)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    url = os.environ.get("REDIS_PRODUCER_URL") or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    try:
        client = Client(url)
        jids = client.push_bulk(
            args.job_class,
            [args.job_args] * args.count,
            queue=args.queue,
            delay=args.delay,
            retry=args.retry,
        )
    except ValueError as exc:  # a malformed URL
        print(f"worker_app.enqueue: REDIS_PRODUCER_URL: {redact(str(exc))}", file=sys.stderr)
        return EX_CONFIG
    except redis.RedisError as exc:
        print(
            f"worker_app.enqueue: Redis at {host_of(url)} unavailable: {redact(str(exc))}",
            file=sys.stderr,
        )
        return EX_UNAVAILABLE
    summary: dict[str, Any] = {
        "event": "jobs_pushed",
        "class": args.job_class,
        "count": len(jids),
        "queue": args.queue,
        "scheduled_in": args.delay,
        "host": host_of(url),
    }
    print(json.dumps(summary))
    if args.print_jids:
        print("\n".join(jids))
    return 0


def _json_array(parser: _Parser, text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except ValueError:
        parser.error(f"--args is not valid JSON: {text!r}")
    if not isinstance(value, list):
        parser.error("--args must be a JSON array, e.g. '[1, \"two\"]'")
    return value


def _retry(parser: _Parser, text: str) -> bool | int:
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered.isdigit():
        return int(lowered)
    parser.error(f"--retry must be true, false or a number, not {text!r}")


if __name__ == "__main__":
    sys.exit(main())
