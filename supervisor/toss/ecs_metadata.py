"""A stand-in for the ECS task metadata endpoint v4, so local tasks have ECS-like identities.

Every process on one machine shares a hostname; `sticky` and `even` need a task ARN and a
Family:Revision, which this serves at `/<task-id>/task` exactly where a task looks for them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ARN_PREFIX = "arn:aws:ecs:local:000000000000:task/cointoss-demo/"
LOCAL_AZ = "local-1a"


@dataclass(frozen=True)
class TaskMetadata:
    """What `/task` says about one task."""

    task_id: str
    family: str
    revision: int

    @property
    def task_arn(self) -> str:
        return ARN_PREFIX + self.task_id

    def document(self) -> dict[str, Any]:
        # ECS sends Revision as a string ("20"); so do we.
        return {
            "TaskARN": self.task_arn,
            "Family": self.family,
            "Revision": str(self.revision),
            "AvailabilityZone": LOCAL_AZ,
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "LaunchType": "LOCAL",
        }


class MetadataEndpoint:
    """A loopback HTTP server on a free port; `uri(task_id)` is the task's ECS_CONTAINER_METADATA_URI_V4."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskMetadata] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ecs-metadata", daemon=True
        )

    def start(self) -> MetadataEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MetadataEndpoint:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def register(self, task: TaskMetadata) -> str:
        """Publishes a task's document and returns the URI to give that task."""
        with self._lock:
            self._tasks[task.task_id] = task
        return f"http://127.0.0.1:{self.port}/{task.task_id}"

    def lookup(self, path: str) -> dict[str, Any] | None:
        """The document for `/<id>/task` (or `/<id>` for the container), None for anything else."""
        parts = [part for part in path.split("?")[0].split("/") if part]
        with self._lock:
            task = self._tasks.get(parts[0]) if parts else None
        if task is None or len(parts) > 2 or (len(parts) == 2 and parts[1] != "task"):
            return None
        if len(parts) == 2:
            return task.document()
        return {"Name": "worker", "Labels": {"com.amazonaws.ecs.task-arn": task.task_arn}}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                document = endpoint.lookup(self.path)
                body = json.dumps(document or {"error": "not found"}).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the demo's screen is for the migration, not for access logs

        return Handler
