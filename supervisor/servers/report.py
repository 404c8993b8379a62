"""The warnings `status` adds about the servers themselves (beyond Sidekiq's keys)."""

from __future__ import annotations

from supervisor.servers.facts import ServerFacts


def server_warnings(old: ServerFacts, new: ServerFacts) -> list[str]:
    """Unknown facts (and the grant that shows them), and a read-only OLD."""
    found = [
        f"{role}: {note}" for role, facts in (("OLD", old), ("NEW", new)) for note in facts.notes
    ]
    if old.read_only:
        found.append(
            "OLD is a read-only replica: workers cannot fetch from it and cointoss migrate cannot"
            " claim there; point MIGRATION_OLD_REDIS_URL at the primary"
        )
    return found
