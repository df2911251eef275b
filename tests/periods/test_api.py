"""GET /api/v1/counts against real workers: exact figures for any date range."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.periods import expected
from tests.periods.scenario import END, START, Scenario, by_key, counts, owned
from tests.workers import WorkerPool, wait_for

pytestmark = pytest.mark.integration

GROUP_BY = ("division", "origin", "previously_known", "referrer", "risk", "week", "month")


def assert_exact(
    scenario: Scenario, start: date, end: date, group_by: str | None = None, **filters: str
) -> dict[str, Any]:
    """Every worker answers exactly the truth for this query; returns one answer."""
    params = {"from_": start.isoformat(), "to": end.isoformat(), **filters}
    if group_by:
        params["group_by"] = group_by
    want_totals, want_groups = expected.figures(
        scenario.events, start, end, group_by=group_by, **filters
    )
    answers = [counts(w, **params) for w in scenario.workers]
    for body in answers:
        assert body["totals"] == want_totals
        assert answers[0] == body  # identical, whichever worker is asked
        if group_by is None:
            assert body["groups"] == []
            continue
        got = by_key(body)
        for key, want in want_groups.items():
            assert got.get(key) == want, (key, got.get(key), want)
        for key, totals in got.items():
            if key not in want_groups:  # listed although empty: zeros, or null if n/a
                zero = {m: (0 if expected.applies(m, group_by) else None) for m in totals}
                assert totals == zero, key
    return answers[0]


def test_whole_period_is_exact_on_both_workers(scenario: Scenario) -> None:
    body = assert_exact(scenario, START, END)
    totals = body["totals"]
    # six months of the county force: about 75 warrants, 84 arrested, 64 children, 750 referrals
    assert 40 < totals["warrants_executed"] < 120
    assert 500 < totals["referrals_received"] < 1000
    assert body["timezone"] == "Europe/London"


def test_single_days_at_the_edges(scenario: Scenario) -> None:
    one = timedelta(days=1)
    for day in (START - one, START, START + one, END - one, END, END + one):
        assert_exact(scenario, day, day)
    first = assert_exact(scenario, START, START)
    # the edge event at 00:00 BST on 1 May is in, the one at 23:59:59 BST on 30 April is not
    assert first["totals"]["warrants_executed"] >= 1


def test_across_the_clock_change(scenario: Scenario) -> None:
    saturday, sunday, monday = date(2025, 10, 25), date(2025, 10, 26), date(2025, 10, 27)
    for start, end in ((saturday, saturday), (sunday, sunday), (monday, monday)):
        assert_exact(scenario, start, end)
    assert_exact(scenario, saturday, monday, "week")
    # Sunday 26 October is 25 hours long: its edge events are 4 warrants, none lost or moved
    edge_ids = {f"edge-w-{n}" for n in (3, 4, 5, 6)}
    sunday_edges = [
        e for e in scenario.events if e.event_id in edge_ids and expected.local_day(e) == sunday
    ]
    assert len(sunday_edges) == 4


@pytest.mark.parametrize("group_by", GROUP_BY)
def test_grouped_by_each_dimension(scenario: Scenario, group_by: str) -> None:
    body = assert_exact(scenario, START, END, group_by)
    groups = body["groups"]
    if group_by in ("week", "month"):
        # consecutive periods covering the range exactly, clipped at its ends
        assert groups[0]["from"] == START.isoformat()
        assert groups[-1]["to"] == END.isoformat()
        for before, after in itertools.pairwise(groups):
            assert date.fromisoformat(before["to"]) + timedelta(days=1) == date.fromisoformat(
                after["from"]
            )
    if group_by == "month":
        assert [g["key"]["month"] for g in groups] == [f"2025-{m:02d}" for m in range(5, 11)]
    if group_by == "week":
        assert groups[0]["key"] == {"week": "2025-W18"}  # Thursday 1 May 2025
        assert date.fromisoformat(groups[1]["from"]).weekday() == 0  # weeks start on Monday
    # the groups add up to the totals for every measure that has the dimension
    for measure, total in body["totals"].items():
        values = [g["totals"][measure] for g in groups]
        if all(v is None for v in values):
            assert not expected.applies(measure, group_by)
        else:
            assert sum(values) == total, measure


def test_filters_and_a_filtered_grouping(scenario: Scenario) -> None:
    assert_exact(scenario, START, END, force="lancashire")
    for division in ("east", "south", "west"):
        assert_exact(scenario, START, END, "month", division=division)
    assert_exact(
        scenario,
        date(2025, 7, 1),
        date(2025, 9, 30),
        "previously_known",
        force="lancashire",
        division="west",
    )


def test_a_worker_started_later_owning_some_partitions_agrees(
    scenario: Scenario, tmp_path: Path
) -> None:
    """A third worker (fresh reader, new partition spread) gives the same answers."""
    late = WorkerPool(scenario.settings, tmp_path)
    try:
        c = late.start().wait_healthy()
        wait_for(lambda: owned(c), 120, "the late worker to own partitions")
        scenario_plus = Scenario(scenario.settings, [*scenario.workers, c], scenario.events)
        assert_exact(scenario_plus, START, END, "division")
        assert_exact(scenario_plus, START, END, "week")
    finally:
        late.stop_all()
        # leave the package's two workers as the next tests expect them: healthy,
        # and between them owning every partition once more
        a, b = scenario.workers

        def settled() -> bool:
            mine, theirs = owned(a), owned(b)
            whole = len(mine | theirs) == scenario.settings.topic_partitions
            return a.healthy() and b.healthy() and whole and not mine & theirs

        wait_for(settled, 120, "the two workers to share the partitions again")


def test_after_partitions_moved_twice_answers_are_still_exact(scenario: Scenario) -> None:
    """Runs after the late worker's test: both workers lost partitions to it and got
    them back, so each rebuilt its own from its table and read the others again."""
    assert_exact(scenario, START, END, "division")
    assert_exact(scenario, START - timedelta(days=3), END + timedelta(days=3), "month")
