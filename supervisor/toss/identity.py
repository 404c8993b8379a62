"""Who this task is: ECS task metadata v4 when ECS provides it, else the hostname.

The lookup must never hold up a worker's start: a slow or hung metadata endpoint costs at most
`METADATA_TIMEOUT_S`, after which the hostname stands in.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from typing import Any

METADATA_TIMEOUT_S = 0.8


@dataclass(frozen=True)
class TaskIdentity:
    """The fields of `redis_selected` that say which task chose; empty strings when unknown."""

    hostname: str
    task_arn: str = ""
    family: str = ""
    revision: str = ""
    az: str = ""

    @property
    def stable_key(self) -> str:
        """What `sticky` hashes: the task ARN survives container restarts inside a task."""
        return self.task_arn or self.hostname

    @property
    def rollout(self) -> str:
        """`Family:Revision` on ECS (one rollout per task-definition revision), else empty."""
        return f"{self.family}:{self.revision}" if self.family else ""


def read_identity(metadata_uri: str | None) -> TaskIdentity:
    """The task's identity; falls back to the hostname on any metadata failure or timeout."""
    hostname = socket.gethostname()
    if not metadata_uri:
        return TaskIdentity(hostname=hostname)
    task = _fetch_task_metadata(metadata_uri.rstrip("/") + "/task")
    if not task:
        return TaskIdentity(hostname=hostname)
    return TaskIdentity(
        hostname=hostname,
        task_arn=_field(task, "TaskARN"),
        family=_field(task, "Family"),
        revision=_field(task, "Revision"),
        az=_field(task, "AvailabilityZone"),
    )


def _field(task: dict[str, Any], name: str) -> str:
    """A field that is absent, null or not a string counts as absent: `str(None)` would give
    every such task the ARN "None", and `sticky` would hash them all alike."""
    value = task.get(name)
    return value if isinstance(value, str) else ""


def _fetch_task_metadata(url: str) -> dict[str, Any]:
    """GET the task document under a hard total deadline (a socket timeout alone resets per read)."""
    result: dict[str, Any] = {}

    def fetch() -> None:
        from urllib.request import ProxyHandler, build_opener

        # The endpoint is task-local (169.254.170.2): an HTTP(S)_PROXY set for the app must
        # not route it away, which plain urlopen would do.
        opener = build_opener(ProxyHandler({}))
        try:
            with opener.open(url, timeout=METADATA_TIMEOUT_S) as response:
                document = json.loads(response.read(1 << 20))
            if isinstance(document, dict):
                result.update(document)
        except (OSError, ValueError):
            return

    worker = threading.Thread(target=fetch, name="ecs-metadata", daemon=True)
    worker.start()
    worker.join(METADATA_TIMEOUT_S)
    return dict(result) if not worker.is_alive() else {}
