"""The simulator's expected counts are the configured rates, and it is deterministic."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np

from opsmetrics.settings import DEFAULT_FORCES_FILE, load_forces
from services.contract.classify import Accepted, Classifier
from services.contract.events import TOPIC_OF, EventType
from services.simulator import MEAN_CHILDREN, MEAN_PERSONS, Simulator

FORCES = load_forces(DEFAULT_FORCES_FILE)
APRIL = datetime(2025, 4, 1, tzinfo=UTC)
OCTOBER = datetime(2025, 10, 1, tzinfo=UTC)


def _totals(seed: int, start: datetime = APRIL, end: datetime = OCTOBER) -> Counter[str]:
    totals: Counter[str] = Counter()
    for e in Simulator(FORCES, seed=seed).generate(start, end):
        totals[e.type] += 1
        totals["persons"] += getattr(e, "persons", 0)
        totals["children"] += getattr(e, "children", 0)
    return totals


def test_six_month_means_and_spread_match_configured_rates() -> None:
    seeds = range(40)
    runs = [_totals(seed) for seed in seeds]
    share = (OCTOBER - APRIL) / timedelta(days=365.25)
    rates = FORCES["lancashire"].rates
    expected = {
        "warrant.executed": rates.warrants_executed * share,  # ~75
        "persons": rates.arrests * share,  # ~84
        "children": rates.children_safeguarded * share,  # ~64
        "referral.received": rates.referrals_received * share,  # ~750
    }
    # compound-Poisson variance: events * E[size^2]
    size2 = {
        "warrant.executed": 1.0,
        "referral.received": 1.0,
        "persons": 1 + 3 * (MEAN_PERSONS - 1) + (MEAN_PERSONS - 1) ** 2,
        "children": 1 + 3 * (MEAN_CHILDREN - 1) + (MEAN_CHILDREN - 1) ** 2,
    }
    mean_size = {
        "warrant.executed": 1.0,
        "referral.received": 1.0,
        "persons": MEAN_PERSONS,
        "children": MEAN_CHILDREN,
    }
    for key, mean in expected.items():
        values = np.array([r[key] for r in runs], dtype=float)
        sd = np.sqrt(mean / mean_size[key] * size2[key])
        # mean of 40 runs within 4 standard errors
        assert abs(values.mean() - mean) < 4 * sd / np.sqrt(len(runs)), (key, values.mean(), mean)
        # spread is Poisson-like, not constant and not wild
        assert 0.6 * sd < values.std(ddof=1) < 1.5 * sd, (key, values.std(ddof=1), sd)


def test_same_seed_same_events_and_all_valid() -> None:
    a = list(Simulator(FORCES, seed=7).generate(APRIL, APRIL + timedelta(days=14)))
    b = list(Simulator(FORCES, seed=7).generate(APRIL, APRIL + timedelta(days=14)))
    c = list(Simulator(FORCES, seed=8).generate(APRIL, APRIL + timedelta(days=14)))
    assert a == b
    assert a != c
    assert len({e.event_id for e in a}) == len(a)
    classifier = Classifier.for_prefix("ops.", {"lancashire": ["east", "south", "west"]})
    for e in a:
        topic = "ops." + TOPIC_OF[EventType(e.type)]
        assert isinstance(classifier.classify_object(topic, e.to_wire()), Accepted)


def test_split_by_origin_and_previously_known() -> None:
    events = list(Simulator(FORCES, seed=3).generate(APRIL, APRIL + timedelta(days=3 * 365)))
    arrests = [e for e in events if e.type == "arrest.made"]
    from_referrals = sum(e.origin == "referral" for e in arrests) / len(arrests)
    known = sum(e.previously_known for e in arrests) / len(arrests)
    assert 0.5 < from_referrals < 0.7
    assert known < 0.5  # most people arrested were not previously known


def test_weekly_and_daily_seasonality() -> None:
    events = list(Simulator(FORCES, seed=5).generate(APRIL, APRIL + timedelta(days=2 * 365)))
    refs = [e.occurred_at for e in events if e.type == "referral.received"]
    weekday = sum(t.weekday() < 5 for t in refs) / 5
    weekend = sum(t.weekday() >= 5 for t in refs) / 2
    assert weekday > 1.4 * weekend
    office = sum(9 <= t.hour < 16 for t in refs)
    assert office > len(refs) / 2


def test_spike_adds_exactly_the_count_in_the_window() -> None:
    start = datetime(2025, 6, 1, 12, tzinfo=UTC)
    extra = Simulator(FORCES, seed=1).spike("lancashire", "east", 5, start, timedelta(hours=1))
    assert len(extra) == 5
    assert all(start <= e.occurred_at < start + timedelta(hours=1) for e in extra)
    assert len({e.event_id for e in extra}) == 5
