"""End to end: events sent over HTTP are counted exactly once by a real stream worker."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from opsmetrics.settings import Settings
from services.contract.events import EVENT_ADAPTER
from stack.kafka import KafkaBroker
from tests.ingest.support import ingest_server, send_batches, simulated_events
from tests.stream.test_stream import assert_totals
from tests.workers import WorkerPool, sum_over, wait_for

pytestmark = pytest.mark.integration


def _models(events: list[dict[str, Any]]) -> list[Any]:
    return [EVENT_ADAPTER.validate_python({**e, "source": "test"}) for e in events]


def _counted(pool: WorkerPool) -> int:
    samples = [w.metrics() for w in pool.workers]
    return int(sum(sum_over(samples, "ops_events_processed_total", ["type"]).values()))


def test_sent_twice_counted_once(
    kafka_settings: Settings, workers: WorkerPool, tmp_path: Path
) -> None:
    events = simulated_events(kafka_settings, 1200)
    with ingest_server(kafka_settings, tmp_path, rate_per_s=10_000, burst=10_000) as (
        server,
        tokens,
    ):
        worker = workers.start().wait_healthy()
        token = next(iter(tokens.values()))
        first = send_batches(server.base_url, token, events)
        again = send_batches(server.base_url, token, events)
    assert {r["outcome"] for r in first} == {"accepted"}
    assert {r["outcome"] for r in again} == {"duplicate"}
    wait_for(lambda: _counted(workers) == len(events), 180, "every event counted")
    assert_totals([worker.metrics()], _models(events))


def test_kafka_restarted_between_retries_loses_nothing(
    kafka_settings: Settings,
    kafka_broker: KafkaBroker | None,
    workers: WorkerPool,
    tmp_path: Path,
) -> None:
    if kafka_broker is None:
        pytest.fail("this test stops the broker: run it with the session's own broker")
    events = simulated_events(kafka_settings, 1500, seed=8)
    with ingest_server(kafka_settings, tmp_path, rate_per_s=10_000, burst=10_000) as (
        server,
        tokens,
    ):
        worker = workers.start().wait_healthy()
        token = next(iter(tokens.values()))
        send_batches(server.base_url, token, events[:500])
        results: list[dict[str, Any]] = []
        try:
            kafka_broker.stop()
            sender = threading.Thread(
                target=lambda: results.extend(send_batches(server.base_url, token, events[500:])),
                daemon=True,
            )
            sender.start()  # these requests get 503 and are retried
        finally:
            kafka_broker.start()
            kafka_broker.wait_ready()
        sender.join(timeout=240)
        assert not sender.is_alive()
    assert len(results) == 1000
    assert {r["outcome"] for r in results} <= {"accepted", "duplicate"}
    wait_for(lambda: _counted(workers) == len(events), 240, "every event counted")
    assert_totals([worker.metrics()], _models(events))
