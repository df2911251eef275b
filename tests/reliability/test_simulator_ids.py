"""Regression test, found by scenario 1: distinct simulated events must never share an event id.

The stream counts an event id once, so two different events with one id make one
of them silently disappear (the truth in tests/stream/truth.py de-duplicates the
same way, so only this direct check sees it).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from opsmetrics.settings import Force, YearlyRates
from services.simulator import Simulator

pytestmark = pytest.mark.reliability

RATES = YearlyRates(
    referrals_received=20_000.0,
    warrants_executed=2_000.0,
    arrests=2_000.0,
    children_safeguarded=2_000.0,
)


def test_distinct_events_of_forces_sharing_a_division_name_have_distinct_ids() -> None:
    forces = {
        "lancashire": Force(name="Lancashire", divisions=["east", "south"], rates=RATES),
        "cumbria": Force(name="Cumbria", divisions=["south"], rates=RATES),
    }
    sim = Simulator(forces, seed=1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = list(sim.generate(start, start + timedelta(days=7)))
    events += sim.spike("lancashire", "south", 20, start, timedelta(hours=1))
    events += sim.spike("cumbria", "south", 20, start, timedelta(hours=1))
    shared = [i for i, n in Counter(e.event_id for e in events).items() if n > 1]
    assert not shared, f"{len(shared)} ids name more than one event, e.g. {shared[:3]}"
