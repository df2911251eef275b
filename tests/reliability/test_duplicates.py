"""Scenario 4: every event is published two or three times, by different producers.

Three separate Publisher instances (three producer ids: Kafka's idempotence does not
merge their copies) publish the copies in shuffled orders; some copies arrive only
after the worker was killed and restarted. Each event is counted once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from opsmetrics.settings import Settings
from tests.reliability.common import (
    DUPLICATE_EVENTS,
    PublishStats,
    publish_with_retry,
    recent_events,
    rng_for,
    settle,
    source_messages,
    tally,
)
from tests.reliability.conftest import Pool, Scenario
from tests.stream.test_stream import assert_windows

pytestmark = pytest.mark.reliability


@pytest.mark.timeout(900)
def test_every_event_two_or_three_times_from_different_producers(
    rel_settings: Settings, pool: Pool, scenario: Callable[[str], Scenario]
) -> None:
    rec = scenario("4. duplicates from 3 producers")
    rng = rng_for("duplicates")
    events = recent_events(rel_settings, DUPLICATE_EVENTS, seed=rng.randrange(10**6))
    rec.events = len(events)
    # copies[k]: what producer k sends; before[k]: sent before the restart
    before: list[list[Any]] = [[], [], []]
    after: list[list[Any]] = [[], [], []]
    copies = 0
    for e in events:
        n = rng.choice((2, 3))
        copies += n
        for k in rng.sample(range(3), n):
            (before if rng.random() < 0.5 else after)[k].append(e)
    for lists in (before, after):
        for copy in lists:
            rng.shuffle(copy)
    stats = PublishStats()
    worker = pool.start().wait_healthy()
    for k in range(3):
        publish_with_retry(rel_settings, before[k], client_id=f"dup-producer-{k}", stats=stats)
    first = settle([worker], source_messages(rel_settings))
    assert first.complete, f"{first.done} of {first.expected} before the restart"
    worker.kill()  # the de-duplication state must survive a crash
    worker = pool.start()
    for k in (2, 0, 1):  # copies after the restart, while the worker recovers
        publish_with_retry(rel_settings, after[k], client_id=f"dup-producer-{k}-b", stats=stats)
    worker.wait_healthy()
    total = source_messages(rel_settings)
    settled = settle([worker], total)
    rec.messages = total
    rec.faults = f"{total - len(events)} duplicate copies; 1 kill -9 between them"
    result = tally(settled.samples, events)
    rec.take(result)
    rec.details = {"copies": copies, "publish_retries": stats.retries}
    assert settled.complete, f"{settled.done} of {total} messages accounted for"
    assert total >= copies
    result.assert_exact()
    duplicates = sum(settled.samples[0]["ops_events_duplicate_total"].values())
    assert duplicates == total - len(events)
    assert_windows([worker], events)
