"""Every dashboard query against a real Prometheus scraping a real worker fed by Kafka."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dashboards.queries import grafana_panel_queries
from opsmetrics.settings import PROJECT_ROOT, Settings
from services.publisher import Publisher
from services.simulator import Simulator
from services.topics import ensure_topics
from tests.monitoring import monitoring
from tests.stream.test_stream import wait_done
from tests.stream.truth import in_window
from tests.workers import WorkerPool, wait_for

pytestmark = pytest.mark.e2e

RULES = sorted((PROJECT_ROOT / "prometheus" / "rules").glob("*.yml"))
# Answers that need history Prometheus cannot have in a fresh test (the same hours
# one, four or 28 days ago), or an alert that only fires on a surge.
NEEDS_HISTORY = re.compile(
    r"offset|:increase1h|:baseline|:threshold|:increase24h|:increase7d"
    r"|ALERTS|rate\(|increase\(|:rate5m|:increase1h"
)


def test_every_panel_query_runs_and_live_ones_return_data(
    kafka_settings: Settings, workers: WorkerPool, tmp_path: Path
) -> None:
    ensure_topics(kafka_settings)
    now = datetime.now(UTC) - timedelta(minutes=2)
    events = list(Simulator(kafka_settings.forces, seed=12).generate(now - timedelta(days=40), now))
    worker = workers.start().wait_healthy()
    with Publisher(kafka_settings) as pub:
        pub.publish_many(events)
    wait_done([worker], len(events))
    with monitoring(tmp_path, [worker.url], RULES) as (prom, _):
        wait_for(lambda: prom.value('sum(up{job="ops-stream"})') == 1, 60, "the worker scraped")
        wait_for(lambda: prom.query("type:ops_last_event_age:seconds"), 60, "rules evaluated")
        queries = grafana_panel_queries()
        assert len(queries) > 40
        empty = []
        for title, expr in queries:
            result = prom.query(expr)  # raises on any query error
            if not result and not NEEDS_HISTORY.search(expr):
                empty.append((title, expr))
        assert empty == [], empty

        # the boards' headline number equals what the pipeline counted (exact window rule)
        def referrals_28d_match() -> bool:
            t = datetime.now(UTC)
            got = prom.value('sum(ops_referrals_received_window{window="28d"})')
            want = sum(
                1
                for e in events
                if e.type == "referral.received" and in_window(e.occurred_at, "28d", t)
            )
            return got == want

        wait_for(referrals_28d_match, 30, "the 28-day referral count on the board")
