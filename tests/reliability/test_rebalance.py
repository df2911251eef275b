"""Scenario 3: one worker, then three, then one again, while events flow.

At rest the sums over the live workers equal the truth, and each source partition
is exported by exactly one worker (standby copies of the tables are never exported).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from opsmetrics.settings import Settings
from tests.reliability.common import (
    REBALANCE_EVENTS,
    Background,
    PublishStats,
    assert_each_partition_once,
    partition_owners,
    publish_with_retry,
    recent_events,
    rng_for,
    settle,
    source_messages,
    tally,
)
from tests.reliability.conftest import Pool, Scenario
from tests.stream.test_stream import assert_windows
from tests.workers import Worker, wait_for

pytestmark = pytest.mark.reliability


# Faust's and aiokafka's INFO lines (rebalances, recovery) for the diagnosis below.
LIBRARY_INFO = {"OPS_LOG_LEVEL_LIBRARIES": "INFO"}


def _wait_split(workers: list[Worker], what: str) -> None:
    """Wait for :func:`_split`; on a timeout, say what each worker was doing."""
    try:
        wait_for(lambda: _split(workers), 180, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(w.diagnosis() for w in workers)) from None


def _split(workers: list[Worker]) -> bool:
    """All workers healthy, every partition exported once, every worker exporting some."""
    if not all(w.healthy() for w in workers):
        return False
    samples = [w.metrics() for w in workers]
    owners = partition_owners(samples)
    each = [bool(s.get("ops_worker_partition_active")) for s in samples]
    return owners == dict.fromkeys(range(6), 1) and all(each)


@pytest.mark.timeout(900)
def test_one_to_three_to_one_worker_while_events_flow(
    rel_settings: Settings, pool: Pool, scenario: Callable[[str], Scenario]
) -> None:
    rec = scenario("3. rebalances 1 -> 3 -> 1 workers")
    rng = rng_for("rebalance")
    events = recent_events(rel_settings, REBALANCE_EVENTS, seed=rng.randrange(10**6))
    rec.events = len(events)
    half = len(events) // 2
    a = pool.start(**LIBRARY_INFO).wait_healthy()

    # 1 -> 3 while the first half flows
    stats = PublishStats()
    publisher = Background(publish_with_retry, rel_settings, events[:half], rate=100.0, stats=stats)
    publisher.start()
    time.sleep(rng.uniform(1.0, 5.0))
    b = pool.start(**LIBRARY_INFO)
    time.sleep(rng.uniform(0.0, 3.0))
    c = pool.start(**LIBRARY_INFO)
    publisher.join_ok(600)
    trio = [a, b, c]
    _wait_split(trio, "three workers sharing the partitions")
    settled = settle(trio, source_messages(rel_settings))
    at_three = tally(settled.samples, events[:half])
    assert settled.complete, f"{settled.done} of {settled.expected} messages with three workers"
    assert_each_partition_once(settled.samples)
    at_three.assert_exact()
    assert_windows(trio, events[:half])

    # 3 -> 1 while the second half flows: one leaves cleanly, one is killed
    publisher = Background(publish_with_retry, rel_settings, events[half:], rate=100.0, stats=stats)
    publisher.start()
    time.sleep(rng.uniform(1.0, 4.0))
    b.stop()
    time.sleep(rng.uniform(0.0, 3.0))
    c.kill()
    publisher.join_ok(600)
    _wait_split([a], "the remaining worker to own every partition")
    total = source_messages(rel_settings)
    settled = settle([a], total)
    rec.messages = total
    rec.faults = "2 workers joined, then 1 stopped and 1 killed (-9): 4 rebalances"
    result = tally(settled.samples, events)
    rec.take(result)
    rec.details = {"settle_s": round(settled.waited_s, 1), "publish_retries": stats.retries}
    assert settled.complete, f"{settled.done} of {total} messages accounted for"
    assert_each_partition_once(settled.samples)
    result.assert_exact()
    assert sum(settled.samples[0]["ops_events_duplicate_total"].values()) == total - len(events)
    assert_windows([a], events)
