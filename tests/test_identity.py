"""Task identity from a real local HTTP server playing the ECS task metadata endpoint v4."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import pytest

from supervisor.toss.identity import METADATA_TIMEOUT_S, TaskIdentity, read_identity
from tests.conftest import run_cointoss

# Shaped like a Fargate /task answer (Revision is a string in the real thing).
TASK = {
    "Cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
    "TaskARN": "arn:aws:ecs:eu-west-1:123456789012:task/prod/5f3c2a1b9d8e4f70",
    "Family": "sidekiq-workers",
    "Revision": "17",
    "AvailabilityZone": "eu-west-1b",
    "Containers": [{"Name": "worker"}],
}
# A metadata lookup never holds a start up for a second or more.
START_DELAY_LIMIT_S = 1.0

Behaviour = Callable[[BaseHTTPRequestHandler], None]


def serve_json(document: object, status: int = 200) -> Behaviour:
    def respond(handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps(document).encode() if not isinstance(document, bytes) else document
        handler.send_response(status if handler.path.endswith("/task") else 404)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def hang(handler: BaseHTTPRequestHandler) -> None:
    time.sleep(5)


def trickle(handler: BaseHTTPRequestHandler) -> None:
    """Headers, then one byte every 0.3 s: each read beats a socket timeout, the whole never ends."""
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    for _ in range(20):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.3)


def timed_read(uri: str | None) -> tuple[TaskIdentity, float]:
    started = time.monotonic()
    identity = read_identity(uri)
    return identity, time.monotonic() - started


def test_no_metadata_variable_means_the_hostname() -> None:
    """Outside ECS the task is its hostname, and sticky/even fall back to it."""
    identity = read_identity(None)
    assert identity == TaskIdentity(hostname=socket.gethostname())
    assert identity.stable_key == socket.gethostname()
    assert identity.rollout == ""


@pytest.mark.parametrize("suffix", ["", "/"])
def test_task_fields_come_from_the_task_document(
    metadata_server: Callable[[Behaviour], str], suffix: str
) -> None:
    """TaskARN, Family, Revision and AvailabilityZone are read from `${URI}/task`."""
    identity = read_identity(metadata_server(serve_json(TASK)) + suffix)
    assert identity == TaskIdentity(
        hostname=socket.gethostname(),
        task_arn=TASK["TaskARN"],
        family="sidekiq-workers",
        revision="17",
        az="eu-west-1b",
    )
    assert identity.stable_key == TASK["TaskARN"]
    assert identity.rollout == "sidekiq-workers:17"


@pytest.mark.parametrize(
    "behaviour",
    [serve_json({"error": "nope"}, status=500), serve_json(b"{not json"), serve_json([1, 2])],
    ids=["http-500", "bad-json", "not-an-object"],
)
def test_bad_answers_fall_back_to_the_hostname(
    metadata_server: Callable[[Behaviour], str], behaviour: Behaviour
) -> None:
    """An error status or a document that is not a JSON object leaves only the hostname."""
    assert read_identity(metadata_server(behaviour)) == TaskIdentity(hostname=socket.gethostname())


@pytest.mark.parametrize("behaviour", [hang, trickle], ids=["hangs", "trickles"])
def test_a_stuck_endpoint_delays_the_start_less_than_a_second(
    metadata_server: Callable[[Behaviour], str], behaviour: Behaviour
) -> None:
    """A metadata endpoint that never finishes answering costs under 1 s, then the hostname."""
    identity, elapsed = timed_read(metadata_server(behaviour))
    assert identity == TaskIdentity(hostname=socket.gethostname())
    assert METADATA_TIMEOUT_S < 1.0
    assert elapsed < START_DELAY_LIMIT_S


def test_refused_connection_is_the_hostname() -> None:
    """Nothing listening at the URI: the hostname, at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    identity, elapsed = timed_read(f"http://127.0.0.1:{port}/v4/x")
    assert identity.task_arn == ""
    assert elapsed < START_DELAY_LIMIT_S


def test_an_http_proxy_setting_is_not_used_for_the_metadata_endpoint(
    metadata_server: Callable[[Behaviour], str],
) -> None:
    """The endpoint is task-local: an HTTP(S)_PROXY meant for the app must not swallow the
    lookup (a fresh process, since urllib caches its proxy settings on first use)."""
    proxy = "http://127.0.0.1:9"  # the discard port: nothing listens there
    env = {name: proxy for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy")}
    env |= {
        "NO_PROXY": "",
        "no_proxy": "",
        "MIGRATION_NEW_REDIS_URL": "redis://127.0.0.1:1/0",
        "MIGRATION_NEW_WEIGHT": "1",
        "ECS_CONTAINER_METADATA_URI_V4": metadata_server(serve_json(TASK)),
    }
    result = run_cointoss(["exec", "--", "true"], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stderr.splitlines()[-1])["task_arn"] == TASK["TaskARN"]


def test_exec_goes_on_when_the_endpoint_hangs(metadata_server: Callable[[Behaviour], str]) -> None:
    """End to end: a hung metadata endpoint leaves the task fields empty and the worker starts."""
    env = {
        "MIGRATION_NEW_REDIS_URL": "redis://127.0.0.1:1/0",
        "MIGRATION_NEW_WEIGHT": "1",
        "ECS_CONTAINER_METADATA_URI_V4": metadata_server(hang),
    }
    result = run_cointoss(["exec", "--", "true"], env)
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stderr.splitlines()[-1])
    assert (event["task_arn"], event["hostname"]) == ("", socket.gethostname())
