"""The Prometheus collector: contract metrics summed over this worker's active partitions.

Window gauges and counters are read at scrape time from the view's incremental sums
(streams/view.py); each sample's label dict is built once, at start-up, and each
label set keeps its lines of text until its row changes, so a scrape formats only
the label sets that changed (streams/exposition.py, ``RenderedMetric``).
Every configured label combination is exported from the start with value 0, so
boards show zeros and ``increase()`` sees the first event. A label value is only
ever one of the configured forces and divisions or an enumeration of the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from opsmetrics.settings import Force
from services.contract.events import RejectReason
from streams.exposition import RenderedMetric, number, sample_prefix
from streams.labels import FAMILIES, Family, all_label_sets, join
from streams.view import EVENTS, ROW, UNITS, WINDOWS, CountsView, Edges

Active = Callable[[], set[tuple[str, int]] | None]
ZERO_ROW = (0,) * ROW


class _LabelSet:
    """One configured label set of a family: its samples' label dicts, built once, and
    its lines of text for the last row exported."""

    __slots__ = ("counter", "counter_line", "gauge_lines", "key", "prefixes", "row", "windows")

    def __init__(self, fam: Family, values: tuple[str, ...]) -> None:
        self.key = join(values)
        self.counter = dict(zip(fam.labels, values, strict=True))
        self.windows = [{**self.counter, "window": w} for w in WINDOWS]
        self.prefixes = [sample_prefix(fam.window_gauge, labels) for labels in self.windows]
        self.prefixes.append(sample_prefix(fam.counter + "_total", self.counter))
        self.row: tuple[int, ...] | None = None
        self.counter_line = self.gauge_lines = ""

    def lines(self, row: tuple[int, ...]) -> tuple[str, str]:
        """The counter line and the window gauges' lines for ``row`` (kept until it changes)."""
        if row != self.row:
            self.row = row
            prefixes = self.prefixes
            self.gauge_lines = "".join(
                f"{prefixes[w]}{number(row[w])}\n" for w in range(len(WINDOWS))
            )
            self.counter_line = f"{prefixes[-1]}{number(row[UNITS])}\n"
        return self.counter_line, self.gauge_lines


Snapshot = list[tuple[_LabelSet, tuple[int, ...]]]  # each label set and its exported row


class StreamCollector(Collector):
    """Exports the counts of the partitions ``active()`` returns as (type code, partition).

    While ``active()`` returns None (the worker is restoring its tables after a start
    or a rebalance) no count is exported at all: a series that pauses and resumes
    at the same value is harmless to ``increase()``, a drop to zero is a reset.
    ``ops_worker_partition_active{partition}`` says which partitions the exported
    counts cover, so recording rules can sum only when every partition is covered
    by exactly one worker.
    """

    def __init__(
        self,
        view: CountsView,
        forces: Mapping[str, Force],
        tz: ZoneInfo,
        active: Active,
        clock: Callable[[], datetime],
        last_event: Mapping[str, float],
        lag: Callable[[], Mapping[tuple[str, int], int]],
    ) -> None:
        self.view = view
        self.tz = tz
        self.active = active
        self.clock = clock
        self.last_event = last_event
        self.lag = lag
        self.label_sets = {
            f.code: [_LabelSet(f, v) for v in all_label_sets(f, forces)] for f in FAMILIES
        }
        self.expected = [
            (slug, division, force.rates.referrals_received / len(force.divisions))
            for slug, force in sorted(forces.items())
            for division in force.divisions
        ]

    def collect(self) -> Iterator[Metric]:
        """Build every contract metric family from the view."""
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
        rows_by_code = self.view.export(edges, active)
        events_by_type: dict[str, int] = {}
        for fam in FAMILIES:
            rows = rows_by_code.get(fam.code, {})
            # Label sets no longer configured are never exported, but their events count.
            events_by_type[fam.type.value] = sum(row[EVENTS] for row in rows.values())
            snapshot = [
                (label_set, tuple(rows.get(label_set.key, ZERO_ROW)))
                for label_set in self.label_sets[fam.code]
            ]
            counter_lines, gauge_lines = [], []
            for label_set, row in snapshot:
                counter_line, gauge_text = label_set.lines(row)
                counter_lines.append(counter_line)
                gauge_lines.append(gauge_text)
            yield RenderedMetric(
                fam.counter,
                fam.help + ".",
                "counter",
                "".join(counter_lines),
                partial(_counter_samples, fam, snapshot),
            )
            yield RenderedMetric(
                fam.window_gauge,
                fam.help + ", in rolling (1h, 24h, 7d, 28d) and calendar windows.",
                "gauge",
                "".join(gauge_lines),
                partial(_gauge_samples, fam, snapshot),
            )
        yield from self._pipeline(active, events_by_type)

    def _pipeline(
        self, active: set[tuple[str, int]], events_by_type: dict[str, int]
    ) -> Iterator[Metric]:
        type_of = {f.code: f.type.value for f in FAMILIES}
        processed = CounterMetricFamily(
            "ops_events_processed", "Events counted (first sightings), by type.", labels=["type"]
        )
        duplicates = CounterMetricFamily(
            "ops_events_duplicate",
            "Repeated event_ids, counted once and skipped.",
            labels=["type"],
        )
        dup = dict.fromkeys(type_of.values(), 0)
        for (code, p), n in self.view.duplicates.items():
            if (code, p) in active:
                dup[type_of[code]] += n
        for t in type_of.values():
            processed.add_metric([t], events_by_type.get(t, 0))
            duplicates.add_metric([t], dup[t])
        rejected = CounterMetricFamily(
            "ops_events_rejected",
            "Messages sent to the dead-letter topic, by reason.",
            labels=["reason"],
        )
        rej = {r.value: 0 for r in RejectReason}
        for (code, p, reason), n in self.view.rejected.items():
            if (code, p) in active and reason in rej:
                rej[reason] += n
        for reason, n in rej.items():
            rejected.add_metric([reason], n)
        last = GaugeMetricFamily(
            "ops_last_event_timestamp_seconds",
            "Processing time of the last accepted event, by type (0: none since start).",
            labels=["type"],
        )
        for t in type_of.values():
            last.add_metric([t], self.last_event.get(t, 0.0))
        yield from (processed, duplicates, rejected, last)
        yield from self._lag_only()

    def _expected(self) -> Metric:
        """The configured yearly referral rate: the alerts' baseline while history is short."""
        gauge = GaugeMetricFamily(
            "ops_referrals_expected_per_year",
            "Configured referrals a year (config/forces.toml), shared equally by divisions.",
            labels=["force", "division"],
        )
        for force, division, rate in self.expected:
            gauge.add_metric([force, division], rate)
        return gauge

    def _lag_only(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "ops_consumer_lag",
            "Messages not yet committed: end offset minus committed offset.",
            labels=["topic", "partition"],
        )
        for (topic, partition), n in sorted(self.lag().items()):
            lag.add_metric([topic, str(partition)], n)
        yield lag


def _counter_samples(fam: Family, snapshot: Snapshot) -> list[Sample]:
    name = fam.counter + "_total"
    return [Sample(name, label_set.counter, row[UNITS]) for label_set, row in snapshot]


def _gauge_samples(fam: Family, snapshot: Snapshot) -> list[Sample]:
    name = fam.window_gauge
    return [
        Sample(name, labels, row[w])
        for label_set, row in snapshot
        for w, labels in enumerate(label_set.windows)
    ]
