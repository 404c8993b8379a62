"""The warnings `status` adds about the servers themselves (beyond Sidekiq's keys)."""

from __future__ import annotations

from supervisor.servers.facts import ServerFacts
from supervisor.servers.sidekiq_needs import version_warning


def server_warnings(old: ServerFacts, new: ServerFacts, sidekiq: set[int]) -> list[str]:
    """Unknown facts (and the grant that shows them), a read-only OLD, a NEW too old for the
    fleet's Sidekiq."""
    found = [
        f"{role}: {note}" for role, facts in (("OLD", old), ("NEW", new)) for note in facts.notes
    ]
    if old.read_only:
        found.append(
            "OLD is a read-only replica: workers cannot fetch from it and cointoss migrate cannot"
            " claim there; point MIGRATION_OLD_REDIS_URL at the primary"
        )
    too_old = version_warning("NEW", new, sidekiq)
    if too_old:
        found.append(too_old)
    return found
