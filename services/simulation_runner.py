"""Drives the simulator onto Kafka: backfill as fast as the broker takes it, or live."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import structlog

from services.publisher import Publisher
from services.simulator import SimEvent, Simulator

log = structlog.get_logger(__name__)
BATCH = 1000


def backfill(pub: Publisher, sim: Simulator, start: datetime, end: datetime) -> dict[str, int]:
    """Publish every simulated event in ``[start, end)``; return counts by type."""
    counts: Counter[str] = Counter()
    batch: list[SimEvent] = []
    for event in sim.generate(start, end):
        batch.append(event)
        if len(batch) >= BATCH:
            pub.publish_many(batch)
            counts.update(e.type for e in batch)
            batch.clear()
    if batch:
        pub.publish_many(batch)
        counts.update(e.type for e in batch)
    log.info("backfill_done", start=start.isoformat(), end=end.isoformat(), **counts)
    return dict(counts)


def live(
    pub: Publisher,
    sim: Simulator,
    factor: float,
    duration_s: float | None = None,
    spike: tuple[str, str, int, timedelta] | None = None,
    tick_s: float = 1.0,
) -> int:
    """Publish events as they happen, ``factor`` times faster than real life.

    Each real second stands for ``factor`` simulated seconds: the events of that
    simulated span are published with the current time as ``occurred_at`` (an
    event may never lie in the future). A spike is spread over its (compressed)
    span. Returns the number of events published.
    """
    started = time.monotonic()
    sim_clock = datetime.now(UTC)
    pending_spike = []
    if spike:
        force, division, count, over = spike
        pending_spike = sim.spike(force, division, count, sim_clock, over)
    published = 0
    while duration_s is None or time.monotonic() - started < duration_s:
        tick_started = time.monotonic()
        sim_next = sim_clock + timedelta(seconds=tick_s * factor)
        now = datetime.now(UTC)
        due: list[SimEvent] = list(sim.generate(sim_clock, sim_next))
        due += [e for e in pending_spike if e.occurred_at < sim_next]
        pending_spike = [e for e in pending_spike if e.occurred_at >= sim_next]
        if due:
            restamped = [e.model_copy(update={"occurred_at": now}) for e in due]
            pub.publish_many(restamped)
            published += len(restamped)
        sim_clock = sim_next
        time.sleep(max(0.0, tick_s - (time.monotonic() - tick_started)))
    return published
