"""Scenario 5: late and out-of-order events, interleaved with current ones.

Events minutes, hours, days and weeks late, events just inside and beyond the finer
buckets' horizons (2 hours for minutes, 30 days for hours), and events years old,
all shuffled together with current ones. Counters and every window gauge (rolling
and calendar) equal the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from opsmetrics.settings import Settings
from streams.counter import HOUR_HORIZON, MINUTE_HORIZON
from tests.reliability.common import (
    LATE_EVENTS,
    divisions,
    make_event,
    publish_with_retry,
    rng_for,
    settle,
    source_messages,
    tally,
)
from tests.reliability.conftest import Pool, Scenario
from tests.stream.test_stream import assert_windows

pytestmark = pytest.mark.reliability

MIN = timedelta(minutes=1)
#: (share of the events, youngest age, oldest age)
AGES = (
    (0.25, timedelta(seconds=5), 59 * MIN),  # current
    (0.05, MINUTE_HORIZON - 10 * MIN, MINUTE_HORIZON + 10 * MIN),  # around the minute horizon
    (0.15, timedelta(hours=2), timedelta(days=2)),  # hours late
    (0.2, timedelta(days=2), timedelta(days=27)),  # days and weeks late
    (0.05, timedelta(days=27), HOUR_HORIZON - timedelta(hours=3)),  # 28-day window edge
    (0.05, HOUR_HORIZON + timedelta(hours=3), timedelta(days=40)),  # just past the hour horizon
    (0.2, timedelta(days=40), timedelta(days=800)),  # months and years late
    (0.05, timedelta(days=800), timedelta(days=9000)),  # decades
)


@pytest.mark.timeout(600)
def test_late_and_out_of_order_events(
    rel_settings: Settings, pool: Pool, scenario: Callable[[str], Scenario]
) -> None:
    rec = scenario("5. late and out-of-order events")
    rng = rng_for("late")
    now = datetime.now(UTC)
    forces = divisions(rel_settings)
    events = []
    for share, young, old in AGES:
        for _ in range(int(LATE_EVENTS * share)):
            age = timedelta(seconds=rng.uniform(young.total_seconds(), old.total_seconds()))
            events.append(make_event(rng, forces, f"late-{len(events):06d}", now - age))
    rng.shuffle(events)
    worker = pool.start().wait_healthy()
    # in small batches, each a random mix of current and late events
    publish_with_retry(rel_settings, events, batch=25)
    total = source_messages(rel_settings)
    settled = settle([worker], total)
    rec.events = rec.messages = total
    rec.faults = "events up to 25 years late, past both bucket horizons, shuffled"
    result = tally(settled.samples, events)
    rec.take(result)
    assert settled.complete, f"{settled.done} of {total} messages accounted for"
    result.assert_exact()
    assert_windows([worker], events)
