"""The local ECS metadata endpoint gives each demo task the identity a real ECS task would have."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest

from supervisor.toss.ecs_metadata import MetadataEndpoint, TaskMetadata
from supervisor.toss.identity import read_identity


@pytest.fixture
def endpoint() -> Iterator[MetadataEndpoint]:
    with MetadataEndpoint() as running:
        yield running


class TestMetadataEndpoint:
    def test_identity_reads_it_like_ecs(self, endpoint: MetadataEndpoint) -> None:
        """cointoss's own identity lookup gets the task ARN, family, revision and AZ from it."""
        uri = endpoint.register(TaskMetadata("t007", "cointoss-worker", 3))
        identity = read_identity(uri)
        assert identity.task_arn == "arn:aws:ecs:local:000000000000:task/cointoss-demo/t007"
        assert (identity.family, identity.revision, identity.az) == (
            "cointoss-worker",
            "3",
            "local-1a",
        )
        assert identity.rollout == "cointoss-worker:3"

    def test_each_task_has_its_own_document(self, endpoint: MetadataEndpoint) -> None:
        """Two tasks registered on one endpoint see different ARNs and revisions."""
        first = endpoint.register(TaskMetadata("a", "fam", 1))
        second = endpoint.register(TaskMetadata("b", "fam", 2))
        with urlopen(first + "/task") as one, urlopen(second + "/task") as two:
            documents = json.load(one), json.load(two)
        assert [d["TaskARN"][-1] for d in documents] == ["a", "b"]
        assert [d["Revision"] for d in documents] == ["1", "2"]

    @pytest.mark.parametrize("path", ["/nobody/task", "/a/stats/extra", "/a/stats", "/"])
    def test_unknown_paths_are_404(self, endpoint: MetadataEndpoint, path: str) -> None:
        """Anything but a registered task's `/task` (or its container root) is not found."""
        endpoint.register(TaskMetadata("a", "fam", 1))
        with pytest.raises(HTTPError) as caught:
            urlopen(f"http://127.0.0.1:{endpoint.port}{path}")
        assert caught.value.code == 404
