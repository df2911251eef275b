"""Scenario 2: Kafka stops and starts again mid-stream; nothing is lost or counted twice.

The publisher retries failed batches with backoff (a retried batch may land twice:
the stream de-duplicates it). The worker is left alone: it must reconnect by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from opsmetrics.settings import Settings
from stack.kafka import KafkaBroker
from tests.reliability.common import (
    BROKER_EVENTS,
    Background,
    PublishStats,
    publish_with_retry,
    recent_events,
    rng_for,
    settle,
    source_messages,
    tally,
)
from tests.reliability.conftest import Pool, Scenario
from tests.stream.test_stream import assert_windows, messages_done

pytestmark = pytest.mark.reliability

OUTAGE_S = (3.0, 10.0)  # how long the broker stays down (random within)
RECOVER_TIMEOUT_S = 240.0


@pytest.mark.timeout(900)
# A producer abandoned unflushed while the broker was down used to warn at garbage
# collection (kafka-python's close raised and left it open): Publisher.close aborts it.
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_broker_stop_and_restart_mid_stream(
    rel_settings: Settings,
    pool: Pool,
    kafka_broker: KafkaBroker | None,
    scenario: Callable[[str], Scenario],
) -> None:
    if kafka_broker is None:
        pytest.skip("needs the session's own broker (OPS_KAFKA_BOOTSTRAP names an external one)")
    rec = scenario("2. broker stop and restart")
    rng = rng_for("broker")
    events = recent_events(rel_settings, BROKER_EVENTS, seed=rng.randrange(10**6))
    rec.events = len(events)
    worker = pool.start().wait_healthy()
    stats = PublishStats()
    publisher = Background(publish_with_retry, rel_settings, events, rate=100.0, stats=stats)
    publisher.start()
    outage = rng.uniform(*OUTAGE_S)
    try:
        deadline = time.monotonic() + 120
        while messages_done([worker.metrics()]) < len(events) // 3:
            assert time.monotonic() < deadline, "the worker did not count a third of the events"
            time.sleep(0.2)
        stopped = time.monotonic()
        kafka_broker.stop()
        time.sleep(outage)
    finally:
        if not kafka_broker.is_running():
            kafka_broker.start()
        kafka_broker.wait_ready(120)
    down_s = time.monotonic() - stopped
    publisher.join_ok(600)
    rec.faults = f"broker stopped for {down_s:.0f} s mid-stream ({stats.retries} publish retries)"
    total = source_messages(rel_settings)
    rec.messages = total
    settled = settle([worker], total, timeout_s=RECOVER_TIMEOUT_S)
    alive = worker.proc is not None and worker.proc.poll() is None
    rec.details = {
        "down_s": round(down_s, 1),
        "publish_retries": stats.retries,
        "publish_errors": stats.errors[:3],
        "settle_s": round(settled.waited_s, 1),
        "worker_alive": alive,
        "worker_healthy": worker.healthy(),
    }
    result = tally(settled.samples, events)
    rec.take(result)
    assert alive, f"the worker exited after the broker restart; log {worker.log}"
    assert settled.complete, (
        f"the worker did not reconnect by itself: {settled.done} of {total} messages "
        f"accounted for {RECOVER_TIMEOUT_S:.0f} s after the broker came back; log {worker.log}"
    )
    result.assert_exact()
    duplicates = sum(settled.samples[0]["ops_events_duplicate_total"].values())
    assert duplicates == total - len(events)
    assert_windows([worker], events)
