"""Publish-to-visible latency: one event at a time, until /metrics counts it.

Needs a running broker (OPS_KAFKA_BOOTSTRAP) and starts its own worker on a fresh
topic prefix. Prints p50/p99 in milliseconds and the /metrics render time.
Usage: .venv/bin/python benchmarks/latency.py [samples]
"""

from __future__ import annotations

import statistics
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

from opsmetrics.settings import Settings
from services.contract.events import ReferralReceived
from services.publisher import Publisher
from services.topics import ensure_topics
from stack.kafka import free_port
from tests.workers import Worker, scrape


def processed(url: str) -> float:
    return sum(scrape(url).get("ops_events_processed_total", {}).values())


def main(samples: int = 100) -> None:
    settings = Settings(topic_prefix=f"lat{uuid.uuid4().hex[:6]}.")
    ensure_topics(settings)
    tmp = Path("/tmp") / settings.topic_prefix.rstrip(".")
    tmp.mkdir(parents=True, exist_ok=True)
    worker = Worker(settings, free_port(), tmp / "worker.log").start().wait_healthy()
    url = f"{worker.url}/metrics"
    latencies = []
    try:
        with Publisher(settings) as pub:
            for n in range(samples):
                before = processed(url)
                started = time.perf_counter()
                pub.publish(
                    ReferralReceived(
                        version=1,
                        event_id=f"lat-{uuid.uuid4().hex}",
                        type="referral.received",
                        occurred_at=datetime.now(UTC),
                        force="lancashire",
                        division="east",
                        source="latency-bench",
                        referrer="nca",
                        risk="low",
                    )
                )
                while processed(url) == before:
                    time.sleep(0.005)
                latencies.append((time.perf_counter() - started) * 1000)
                del n
        renders = []
        for _ in range(20):
            t = time.perf_counter()
            with urllib.request.urlopen(url) as resp:  # noqa: S310 - loopback
                resp.read()
            renders.append((time.perf_counter() - t) * 1000)
    finally:
        worker.stop()
    q = statistics.quantiles(latencies, n=100)
    print(f"publish-to-visible over {samples} events: p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms")
    print(f"/metrics render (1 force, 3 divisions): median {statistics.median(renders):.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
