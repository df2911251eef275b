"""The tests' diagnosis of a stuck worker: its log tail and its stacks (tests/workers.py)."""

from __future__ import annotations

import json

import pytest

from opsmetrics.settings import Settings
from services.topics import ensure_topics
from tests.workers import WorkerPool

pytestmark = pytest.mark.integration


def test_diagnosis_has_the_log_tail_and_the_loops_tasks(
    kafka_settings: Settings, workers: WorkerPool
) -> None:
    ensure_topics(kafka_settings)
    worker = workers.start(OPS_LOG_LEVEL_LIBRARIES="INFO").wait_healthy()
    text = worker.diagnosis()
    assert "--- worker" in text
    assert "last log lines" in text
    assert "rebalanced" in text.split("--- stacks")[0]  # the log tail
    state = json.loads(text.split("--- consumer state\n")[1].split("\n--- stacks")[0])
    assert state["event"] == "consumer_state"
    assert state["in_recovery"] is False
    assert state["flow_active"] is True
    parts = state["partitions"]
    source = f"{kafka_settings.topic_prefix}referrals:0"
    assert parts[source]["active"] is True
    assert parts[source]["fetch"].startswith("PartitionStatus.")  # aiokafka's own view
    assert "position" in parts[source]
    log = f"{kafka_settings.topic_prefix}stream-counts-changelog:0"
    assert parts[log]["recovery"] in ("active", "standby")
    assert any("Fetcher._fetch_requests_routine" in task for task in state["thread_tasks"])
    assert isinstance(state["not_applied"], dict)  # streams/fetch_positions.py
    stacks = text.split("--- stacks")[1]
    assert "THREAD MainThread" in stacks
    assert "TASKS" in stacks
    assert 'File "' in stacks
    assert worker.healthy()  # the dump does not stop the worker
