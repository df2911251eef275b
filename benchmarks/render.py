"""`make bench-render`: the worker's `/metrics` render, old window sums vs incremental.

In process, no Kafka: a CountsView shaped like the million-event bench (5 forces x
10 divisions from benchmarks/forces.toml, every label set of the four families,
6 partitions, RENDER_EVENTS events (default 1,000,000) spread over 30 days of event
time: hour and day buckets over 30 days, minute buckets over the last 2 hours),
rendered with ``prometheus_client.generate_latest`` of a registry holding only the
StreamCollector. Side by side in one run (the machine is shared; compare ratios):

- old: the collector as it was (``window_sums`` over every bucket at each scrape);
- new: incremental sums, a render with no edge moved, right after the minute edge
  moved, right after the hour edge moved; and how much of a render is
  ``generate_latest`` formatting the samples rather than our ``collect``.

Usage: .venv/bin/python -m benchmarks.render          (or: make bench-render)
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from opsmetrics.settings import Force, load_forces
from services.simulator import MEAN_CHILDREN, MEAN_PERSONS
from streams.collector import StreamCollector
from streams.exposition import TextRenderer
from streams.labels import FAMILIES, all_label_sets, join
from streams.periods import PeriodCollector
from streams.view import WINDOWS, CountsView, Edges, window_sums

FORCES_FILE = Path(__file__).parent / "forces.toml"
PARTITIONS = 6
TZ = ZoneInfo("Europe/London")
NOW = datetime(2025, 10, 15, 12, 0, 30, tzinfo=UTC)


class LegacyCollector(StreamCollector):
    """The collector before incremental sums (its ``collect`` verbatim): the old path."""

    def __init__(self, view: CountsView, forces: Mapping[str, Force], **kw: object) -> None:
        super().__init__(view, forces, **kw)  # type: ignore[arg-type]
        self.legacy_sets = {f.code: [join(v) for v in all_label_sets(f, forces)] for f in FAMILIES}

    def collect(self) -> Iterator[Metric]:
        edges = Edges.at(self.clock(), self.tz)
        active = self.active()
        yield self._expected()
        if active is None:
            yield from self._lag_only()
            return
        owned = GaugeMetricFamily(
            "ops_worker_partition_active",
            "1 for each source partition whose counts this worker exports.",
            labels=["partition"],
        )
        for p in sorted({p for _, p in active}):
            owned.add_metric([str(p)], 1)
        yield owned
        events_by_type: dict[str, int] = {}
        for fam in FAMILIES:
            allowed = self.legacy_sets[fam.code]
            totals = dict.fromkeys(allowed, 0)
            windows = {labels: [0] * len(WINDOWS) for labels in allowed}
            n_events = 0
            for (code, p), part in self.view.series.items():
                if code != fam.code or (code, p) not in active:
                    continue
                for labels, series in part.items():
                    n_events += series.total_events
                    if labels not in totals:
                        continue
                    totals[labels] += series.total_units
                    acc = windows[labels]
                    for i, v in enumerate(window_sums(series, edges)):
                        acc[i] += v
            events_by_type[fam.type.value] = n_events
            counter = CounterMetricFamily(fam.counter, fam.help + ".", labels=fam.labels)
            gauge = GaugeMetricFamily(
                fam.window_gauge,
                fam.help + ", in rolling (1h, 24h, 7d, 28d) and calendar windows.",
                labels=[*fam.labels, "window"],
            )
            for labels in allowed:
                values = labels.split(",")
                counter.add_metric(values, totals[labels])
                for name, v in zip(WINDOWS, windows[labels], strict=True):
                    gauge.add_metric([*values, name], v)
            yield counter
            yield gauge
        yield from self._pipeline(active, events_by_type)


def build_view(
    forces: Mapping[str, Force], events: int, now: datetime, seed: int = 1
) -> CountsView:
    """A view holding ``events`` events' buckets, as the worker's would after replaying them."""
    rng = random.Random(seed)
    weights = {"r": 0.0, "w": 0.0, "a": 0.0, "s": 0.0}
    for f in forces.values():
        weights["r"] += f.rates.referrals_received
        weights["w"] += f.rates.warrants_executed
        weights["a"] += f.rates.arrests / MEAN_PERSONS
        weights["s"] += f.rates.children_safeguarded / MEAN_CHILDREN
    codes = list(weights)
    label_sets = {f.code: [join(v) for v in all_label_sets(f, forces)] for f in FAMILIES}
    end = now.timestamp()
    span = 30 * 86400
    table: dict[str, list[int]] = {}
    day_of: dict[int, int] = {}
    for code in rng.choices(codes, weights=list(weights.values()), k=events):
        labels = rng.choice(label_sets[code])
        p = rng.randrange(PARTITIONS)
        ts = end - rng.random() * span
        n = rng.randint(1, 3) if code in "as" else 1
        hour = int(ts // 3600)
        day = day_of.get(hour)
        if day is None:
            day = day_of[hour] = datetime.fromtimestamp(ts, TZ).date().toordinal()
        keys = [f"c|{code}|{p}|t|0|{labels}", f"c|{code}|{p}|h|{hour}|{labels}"]
        keys.append(f"c|{code}|{p}|d|{day}|{labels}")
        if end - ts <= 7200:
            keys.append(f"c|{code}|{p}|m|{int(ts // 60)}|{labels}")
        for key in keys:
            value = table.setdefault(key, [0, 0, 0])
            value[0] += n
            value[1] += 1
    view = CountsView()
    view.rebuild(table.items())
    return view


def timed(
    render: Callable[[], object], runs: int, before: Callable[[], None] = lambda: None
) -> list[float]:
    """Milliseconds of ``runs`` calls of ``render``, each after ``before`` (not timed)."""
    out = []
    for _ in range(runs):
        before()
        t0 = time.perf_counter()
        render()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(ms: list[float]) -> tuple[float, float]:
    """Median and p95 (nearest rank) in milliseconds."""
    ordered = sorted(ms)
    return statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main() -> None:
    forces = load_forces(FORCES_FILE)
    events = int(os.environ.get("RENDER_EVENTS", 1_000_000))
    runs = int(os.environ.get("RENDER_RUNS", 20))
    t0 = time.perf_counter()
    view = build_view(forces, events, NOW)
    n_series = sum(len(part) for part in view.series.values())
    n_buckets = sum(
        len(s.minutes) + len(s.hours) + len(s.days)
        for part in view.series.values()
        for s in part.values()
    )
    print(
        f"view: {events:,} events, {n_series:,} series, {n_buckets:,} buckets "
        f"(built in {time.perf_counter() - t0:.1f} s)"
    )
    clock = [NOW]
    active = {(f.code, p) for f in FAMILIES for p in range(PARTITIONS)}
    kw = {
        "tz": TZ,
        "active": lambda: active,
        "clock": lambda: clock[0],
        "last_event": {},
        "lag": lambda: {},
    }
    registries = {}
    collectors = {}
    for name, cls in (("old", LegacyCollector), ("new", StreamCollector)):
        collectors[name] = cls(view, forces, **kw)  # type: ignore[arg-type]
        registries[name] = CollectorRegistry()
        registries[name].register(collectors[name])

    t0 = time.perf_counter()
    first = generate_latest(registries["new"])
    first_ms = (time.perf_counter() - t0) * 1000
    old_text = generate_latest(registries["old"])
    assert first == old_text, "old and new renders differ"
    samples = sum(1 for line in first.splitlines() if not line.startswith(b"#"))
    print(f"render: {samples:,} samples, {len(first):,} bytes; old and new are byte-equal")

    def step(seconds: int) -> Callable[[], None]:
        def move() -> None:
            clock[0] += timedelta(seconds=seconds)

        return move

    rows: list[tuple[str, list[float]]] = []
    rows.append(
        (
            "old: window_sums over every bucket",
            timed(lambda: generate_latest(registries["old"]), runs),
        )
    )
    rows.append(("new: no edge moved", timed(lambda: generate_latest(registries["new"]), runs)))
    rows.append(
        (
            "new: right after the minute edge moved",
            timed(lambda: generate_latest(registries["new"]), runs, step(60)),
        )
    )
    rows.append(
        (
            "new: right after the hour edge moved",
            timed(lambda: generate_latest(registries["new"]), runs, step(3600)),
        )
    )
    rows.append(
        (
            "new: collect() alone, no edge moved",
            timed(lambda: list(collectors["new"].collect()), runs),
        )
    )
    text = TextRenderer(registries["new"])
    assert text.render() == generate_latest(registries["new"]), "TextRenderer differs"
    rows.append(("new + cached text (the worker's /metrics)", timed(text.render, runs)))
    rows.append(
        (
            "new + cached text, right after the minute edge",
            timed(text.render, runs, step(60)),
        )
    )
    clock[0] = NOW
    generate_latest(registries["old"])  # equal again at the same instant after all the moves
    assert generate_latest(registries["new"]) == generate_latest(registries["old"])
    periods = CollectorRegistry()
    periods.register(
        PeriodCollector(view, forces, TZ, active=lambda: active, clock=lambda: clock[0])
    )
    rows.append(
        (
            "PeriodCollector (cached sums), also on /metrics",
            timed(TextRenderer(periods).render, runs),
        )
    )
    both = CollectorRegistry()
    both.register(collectors["new"])
    both.register(PeriodCollector(view, forces, TZ, active=lambda: active, clock=lambda: clock[0]))
    rows.append(
        ("whole /metrics: both collectors, cached text", timed(TextRenderer(both).render, runs))
    )

    print(f"first new render (full recompute of the sums): {first_ms:.1f} ms")
    print(f"{'':48} {'median ms':>10} {'p95 ms':>10}")
    for name, ms in rows:
        med, p95 = summary(ms)
        print(f"{name:48} {med:10.1f} {p95:10.1f}")
    old_med = summary(rows[0][1])[0]
    new_med = summary(rows[1][1])[0]
    collect_med = summary(rows[4][1])[0]
    print(f"ratio old/new (medians, no edge moved): {old_med / new_med:.0f}x")
    print(
        f"generate_latest formatting is {100 * (1 - collect_med / new_med):.0f}% of a new render "
        f"({new_med - collect_med:.1f} of {new_med:.1f} ms)"
    )


if __name__ == "__main__":
    main()
