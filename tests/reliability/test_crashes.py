"""Scenario 1: the worker is killed with SIGKILL at random moments while events flow."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from opsmetrics.settings import Settings
from tests.reliability.common import (
    CRASH_EVENTS,
    CRASH_KILLS,
    CRASH_PUBLISH_RATE,
    Background,
    PublishStats,
    diagnose,
    publish_with_retry,
    recent_events,
    rng_for,
    settle,
    source_messages,
    tally,
)
from tests.reliability.conftest import Pool, Scenario
from tests.stream.test_stream import assert_windows, messages_done
from tests.workers import Worker

pytestmark = pytest.mark.reliability


def _done(worker: Worker) -> int | None:
    try:
        return messages_done([worker.metrics()]) if worker.healthy() else None
    except OSError:
        return None


@pytest.mark.timeout(1800)
def test_kill_9_at_random_moments_while_events_flow(
    rel_settings: Settings, pool: Pool, scenario: Callable[[str], Scenario]
) -> None:
    rec = scenario("1. worker kill -9 at random moments")
    rng = rng_for("crashes")
    events = recent_events(rel_settings, CRASH_EVENTS, seed=rng.randrange(10**6))
    rec.events = len(events)
    stats = PublishStats()
    publisher = Background(
        publish_with_retry, rel_settings, events, rate=CRASH_PUBLISH_RATE, stats=stats
    )
    worker = pool.start().wait_healthy()
    publisher.start()
    # One kill (at random) lands while the worker is still restoring its tables.
    during_recovery = rng.randrange(1, CRASH_KILLS)
    kills: list[dict[str, object]] = []
    for n in range(CRASH_KILLS):
        if n == during_recovery:
            time.sleep(rng.uniform(0.5, 6.0))  # started, not yet (or just) recovered
        else:
            worker.wait_healthy(180)
            before = _done(worker) or 0
            target = before + rng.randrange(200, 2500)
            until = time.monotonic() + rng.uniform(3.0, 25.0)
            # kill after a random amount of progress or a random time, whichever comes first
            while time.monotonic() < until and (_done(worker) or 0) < target:
                time.sleep(rng.uniform(0.05, 0.5))
        done = _done(worker)
        worker.kill()  # SIGKILL to the whole process group
        kills.append(
            {
                "done": done,
                "healthy_at_kill": done is not None,
                "publishing": publisher.is_alive(),
                "at_s": round(time.monotonic() - rec.started, 1),
            }
        )
        worker = pool.start()
    publisher.join_ok(900)
    worker.wait_healthy(180)
    total = source_messages(rel_settings)
    settled = settle([worker], total)
    rec.messages = total
    rec.faults = f"{len(kills)} x kill -9 of the worker ({stats.retries} publish retries)"
    rec.details = {"kills": kills, "settle_s": round(settled.waited_s, 1), "done": settled.done}
    result = tally(settled.samples, events)
    rec.take(result)
    if not settled.complete or result.lost:
        rec.details["diagnosis"] = diagnose(rel_settings, settled.samples)
    assert settled.complete, f"{settled.done} of {total} messages accounted for"
    result.assert_exact()
    duplicates = sum(settled.samples[0]["ops_events_duplicate_total"].values())
    unique = len({e.event_id for e in events})
    assert duplicates == total - unique, "a replay after a crash was taken for a duplicate"
    assert sum(bool(k["publishing"]) for k in kills) >= CRASH_KILLS - 1, kills
    assert_windows([worker], events)
