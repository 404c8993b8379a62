"""The demo's verdict arithmetic: lost, duplicates and the per-deployment split, from the ledgers."""

from __future__ import annotations

import pytest

from supervisor.demo.summary import TaskChoice, deployment_split, format_summary, tally_jobs


class TestTallyJobs:
    @pytest.mark.parametrize(
        ("expected", "old", "new", "lost", "duplicates", "unexpected"),
        [
            (["a", "b", "c"], {"a": 1}, {"b": 1, "c": 1}, 0, 0, 0),
            (["a", "b", "c"], {"a": 1}, {"b": 1}, 1, 0, 0),
            (["a", "b"], {"a": 2}, {"b": 1}, 0, 1, 0),
            (["a", "b"], {"a": 1}, {"a": 1, "b": 1}, 0, 1, 0),  # ran once on each side
            (["a"], {"a": 1, "z": 1}, {}, 0, 0, 1),
            ([], {}, {}, 0, 0, 0),
        ],
    )
    def test_counts(
        self,
        expected: list[str],
        old: dict[str, int],
        new: dict[str, int],
        lost: int,
        duplicates: int,
        unexpected: int,
    ) -> None:
        """Lost = expected jids in neither ledger; duplicates = jids run more than once overall."""
        tally = tally_jobs(expected, old, new)
        assert (tally.lost, tally.duplicates, tally.unexpected) == (lost, duplicates, unexpected)

    def test_per_side_counts_are_the_ledgers(self) -> None:
        """Jobs per side are the ledgers' sizes; runs are their summed counts."""
        tally = tally_jobs(["a", "b", "c"], {"a": 1, "b": 3}, {"c": 1})
        assert (tally.processed_on_old, tally.runs_on_old) == (2, 4)
        assert (tally.processed_on_new, tally.runs_on_new) == (1, 1)
        assert tally.duplicate_jids == ("b",)

    def test_lost_jids_are_named(self) -> None:
        """The summary names the lost jids (sorted), so an operator can look them up."""
        assert tally_jobs(["b", "a", "c"], {}, {"c": 1}).lost_jids == ("a", "b")


def choice(side: str | None, reason: str | None = "coin", last: str | None = None) -> TaskChoice:
    return TaskChoice(side, reason, last or side)


class TestDeploymentSplit:
    def test_expected_and_observed(self) -> None:
        """Expected applies the weight to the revision's tasks; observed is what they chose."""
        row = deployment_split(
            2, 0.5, "random", [choice("new"), choice("old"), choice("new"), choice(None, None)]
        )
        assert row["expected"] == {"new": 2.0, "old": 2.0}
        assert row["observed"] == {"new": 2, "old": 1, "unknown": 1}
        assert row["reasons"] == {"coin": 3, "unknown": 1}
        assert row["side_without_consumers"] is None

    def test_a_coin_that_starves_a_side_is_flagged(self) -> None:
        """Four coin tosses that all say NEW leave OLD without consumers: the row says so."""
        row = deployment_split(1, 0.5, "random", [choice("new")] * 4)
        assert row["side_without_consumers"] == "old"

    @pytest.mark.parametrize(
        "choices",
        [
            [choice("new", "old_drained")] * 4,
            [choice("old", "even_sequence"), choice("new", "old_drained")],
            [choice("new", "weight_is_1")] * 2,
        ],
    )
    def test_overrides_are_not_starvation(self, choices: list[TaskChoice]) -> None:
        """All NEW because OLD was drained (or weight 1) is the design working, not a starved side."""
        row = deployment_split(3, 0.5, "random", choices)
        assert row["side_without_consumers"] is None

    def test_switches_in_supervise_mode_are_counted(self) -> None:
        """A task that started on OLD and ended on NEW (supervise's re-toss) is counted."""
        row = deployment_split(1, 0.5, "even", [choice("old", last="new"), choice("new")])
        assert row["switched_to_new"] == 1
        assert row["expected"] == {"new": 1.0, "old": 1.0}


def test_format_summary_shows_the_verdict() -> None:
    """The printed summary has one line per deployment and the lost/duplicates verdict."""
    row = deployment_split(1, 0.5, "random", [choice("new")] * 2)
    switched = deployment_split(2, 0.5, "random", [choice("old", last="new"), choice("new")])
    text = format_summary(
        {
            "tasks": 2,
            "strategy": "random",
            "mode": "exec",
            "elapsed_s": 12.34,
            "deployments": [{**row, "why": "first fleet"}, switched],
            "old_drained_after_s": 5.0,
            "mover": {"runs": 1, "moved": 10},
            "kills": 1,
            "jobs": {
                "expected": 4,
                "processed_on_old": 1,
                "processed_on_new": 3,
                "lost": 0,
                "duplicates": 0,
                "unexpected": 0,
            },
        }
    )
    assert "rev 1" in text
    assert "1 switched to NEW when OLD drained" in text
    assert "no consumer on OLD" in text
    assert "lost: 0   duplicates: 0" in text
    assert "OLD drained after: 5.0 s" in text
