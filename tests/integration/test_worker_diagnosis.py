"""The tests' diagnosis of a stuck worker: its log tail and its stacks (tests/workers.py)."""

from __future__ import annotations

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
    stacks = text.split("--- stacks")[1]
    assert "THREAD MainThread" in stacks
    assert "TASKS" in stacks
    assert 'File "' in stacks
    assert worker.healthy()  # the dump does not stop the worker
