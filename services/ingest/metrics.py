"""The ingest API's own Prometheus metrics (a registry of its own, served on /metrics).

Label values come only from configuration (source names) and fixed sets (status
codes, outcomes, the contract's reasons): never from request content.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from services.contract.events import RejectReason

OUTCOMES: Final = ("accepted", "duplicate", "rejected")
STATUSES: Final = (202, 207, 400, 401, 403, 413, 429, 500, 503)
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class IngestMetrics:
    """Requests by status, event results by source/outcome/reason, latency, Kafka state."""

    def __init__(self, sources: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ops_ingest_requests",
            "POST /v1/events requests by HTTP status.",
            ["status"],
            registry=self.registry,
        )
        self.events = Counter(
            "ops_ingest_events",
            "Events received, by source and outcome (reason set for rejected events).",
            ["source", "outcome", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ops_ingest_request_duration_seconds",
            "Time to answer POST /v1/events, including Kafka's acknowledgement.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.kafka_up = Gauge(
            "ops_ingest_kafka_up",
            "1 when Kafka is reachable and the event topics exist, else 0.",
            registry=self.registry,
        )
        # Export every known label set at 0, so the first event is not lost to increase().
        for status in STATUSES:
            self.requests.labels(status=str(status))
        for source in sources:
            for outcome in ("accepted", "duplicate"):
                self.events.labels(source=source, outcome=outcome, reason="")
            for reason in RejectReason:
                self.events.labels(source=source, outcome="rejected", reason=reason.value)

    def request(self, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(status=str(status)).inc()
        self.latency.observe(seconds)

    def result(self, source: str, outcome: str, reason: str = "", n: int = 1) -> None:
        """Count ``n`` events with one outcome."""
        self.events.labels(source=source, outcome=outcome, reason=reason).inc(n)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
