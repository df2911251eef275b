"""``ops_event_delay_seconds``: the delay histogram, observed a batch at a time.

prometheus_client's ``Histogram.observe`` takes a lock and walks the bucket bounds in
Python for each value; once per counted event that was a tenth of the worker's own
time with the counting removed (docs/performance.md, change 18).
:class:`DelayHistogram` keeps, per event type, a count per bucket and the sum, and
:meth:`DelayHistogram.observe` files a batch's delays with a binary search each. It
exports what a ``Histogram`` with the same name, label and buckets exports
(cumulative buckets, ``+Inf``, count, sum; tested), without the ``_created`` gauge.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.exposition import number


class DelayHistogram(Collector):
    """A histogram of delays in seconds with one label, ``type``."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        bounds = [float(b) for b in buckets]
        if bounds != sorted(set(bounds)) or not bounds:
            raise ValueError(f"{name}: buckets must be increasing and distinct, got {buckets}")
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(bounds)  # the +Inf bucket is implied
        self._le = [number(b) for b in bounds] + ["+Inf"]
        self._counts: dict[str, list[int]] = {}  # per bucket, not cumulative
        self._sums: dict[str, float] = {}

    def observe(self, type_: str, delays: Iterable[float]) -> None:
        """Count each delay of ``delays`` (a negative one as 0) for events of ``type_``."""
        counts = self._counts.get(type_)
        if counts is None:
            counts = self._counts[type_] = [0] * (len(self.bounds) + 1)
            self._sums[type_] = 0.0
        bounds, total = self.bounds, self._sums[type_]  # added in order, as observe() does
        for delay in delays:
            if delay < 0.0:
                delay = 0.0
            counts[bisect_left(bounds, delay)] += 1  # the first bound >= delay, as le means
            total += delay
        self._sums[type_] = total

    def collect(self) -> Iterator[Metric]:
        """One histogram family; a type appears once it has been observed."""
        family = HistogramMetricFamily(self.name, self.documentation, labels=["type"])
        for type_, counts in self._counts.items():
            cumulative = list(accumulate(counts))
            family.add_metric(
                [type_], list(zip(self._le, cumulative, strict=True)), self._sums[type_]
            )
        yield family
