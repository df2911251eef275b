"""streams/exposition.py renders byte for byte what prometheus_client renders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from benchmarks.render import build_view
from opsmetrics.settings import DEFAULT_FORCES_FILE, load_forces
from streams.collector import StreamCollector
from streams.exposition import TextRenderer
from streams.periods import PeriodCollector

TZ = ZoneInfo("Europe/London")


class Fresh:
    """A collector that builds new label dicts on every scrape (like most do)."""

    def collect(self):  # type: ignore[no-untyped-def]
        g = GaugeMetricFamily("odd_values", "Help with a \\ and a\nnewline.", labels=["v"])
        g.add_metric(['quote " back \\ slash \n'], 1e-7)
        g.add_metric(["ünïcode"], float("inf"))
        yield g


def test_the_worker_registry_renders_as_generate_latest_scrape_after_scrape() -> None:
    forces = load_forces(DEFAULT_FORCES_FILE)
    now = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    view = build_view(forces, 2000, now)
    clock = [now]
    active = {("r", 0), ("r", 3), ("a", 1), ("s", 5), ("w", 2)}
    registry = CollectorRegistry()
    registry.register(
        StreamCollector(
            view,
            forces,
            tz=TZ,
            active=lambda: active,
            clock=lambda: clock[0],
            last_event={"referral.received": 1.5},
            lag=lambda: {("t", 0): 3},
        )
    )
    registry.register(PeriodCollector(view, forces, TZ, lambda: active, lambda: clock[0]))
    registry.register(Fresh())
    delay = Histogram("delay_seconds", "Delay.", ["type"], buckets=(1, 5), registry=registry)
    delay.labels("a").observe(3)
    Gauge("plain", "No labels.", registry=registry).set(-0.25)
    text = TextRenderer(registry)
    for step in (0, 60, 3600, 86400):
        clock[0] += timedelta(seconds=step)
        view.set(
            "c|r|0|h|" + str(int(clock[0].timestamp() // 3600)) + "|lancashire,east,nca,high",
            [step, 1, step],
        )
        delay.labels("b").observe(step)
        assert text.render() == generate_latest(registry)
    assert b'odd_values{v="quote \\" back \\\\ slash \\n"} 1e-07' in text.render()
