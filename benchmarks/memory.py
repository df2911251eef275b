"""`make bench-memory`: what the stream worker's state costs per event, in-process.

Drives an :class:`~streams.counter.EventCounter` (dict tables, a
:class:`~streams.view.CountsView` mirror) with BENCH_EVENTS (default 1,000,000)
messages made as `make bench` makes them (the simulator's mix for the 5 forces x 10
divisions of benchmarks/forces.toml over 30 days of event time, 0.5% duplicates,
0.05% junk), on their key's home partition of 6, in batches of 2,000, every message
stamped "now" (as when a backlog is published at once: all first sightings are within
the de-duplication window). No Kafka.

Then it reports, for each structure (the period API's day buckets included, as the
worker builds them from the counts changelog), its deep size (every object reachable from it,
``sys.getsizeof``, keys included, each object counted once, in the order of the table,
so the event id strings shared by the index and the seen table count under the index), the
allocations ``tracemalloc`` sees while the structure is rebuilt from its source, and
the process RSS before and after counting.

Usage: .venv/bin/python -m benchmarks.memory     (or: make bench-memory)
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

from opsmetrics.settings import Settings
from services.contract.classify import Classifier
from services.topics import event_topics
from streams.counter import (
    DictTable,
    EventCounter,
    Message,
    canonical_partition,
    count_lists,
)
from streams.labels import BY_TYPE
from streams.periods import DayBuckets
from streams.view import CountsView

HERE = Path(__file__).parent
PARTITIONS = 6
BATCH = 2000


def rss_bytes() -> int:
    """The current resident set size (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def deep_size(root: Any, counted: set[int]) -> int:
    """Bytes of every object reachable from ``root`` not already in ``counted``."""
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in counted or isinstance(obj, type | ModuleType | FunctionType):
            continue
        counted.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
        if isinstance(obj, dict):  # a dict of str keys does not report its keys
            stack.extend(obj)
    return total


def traced(build: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes ``tracemalloc`` sees still allocated after ``build()``, and its result."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    out = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, out


def messages(settings: Settings, total: int) -> list[Message]:
    """``total`` messages as `make bench` publishes them, on their home partitions."""
    from benchmarks.bench import make_events

    now = datetime.now(UTC)
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for i, (topic, key, value) in enumerate(make_events(settings, total)):
        p = canonical_partition(key.decode(), PARTITIONS)
        offset = offsets.get((topic, p), 0)
        offsets[(topic, p)] = offset + 1
        out.append(Message(topic, p, offset, key, value, now + timedelta(microseconds=i)))
    return out


def run(total: int) -> list[tuple[str, int, int, int]]:
    """(structure, entries, deep bytes, traced bytes) after counting ``total`` messages."""
    settings = Settings(topic_prefix="bench.", forces_file=HERE / "forces.toml")
    t = time.perf_counter()
    msgs = messages(settings, total)
    print(f"generated {len(msgs):,} messages in {time.perf_counter() - t:.0f} s", flush=True)
    codes = {name: BY_TYPE[etype].code for name, etype in event_topics(settings).items()}
    classifier = Classifier.for_prefix(
        settings.topic_prefix,
        {slug: f.divisions for slug, f in settings.forces.items()},
    )
    view = CountsView()
    counts, seen = DictTable(), DictTable()
    gc.collect()
    rss0 = rss_bytes()
    t = time.perf_counter()
    counter = EventCounter(
        classifier, codes, PARTITIONS, counts, seen, settings.tz, on_write=view.set
    )
    for start in range(0, len(msgs), BATCH):
        counter.handle_batch(msgs[start : start + BATCH])
    gc.collect()
    rss1 = rss_bytes()
    print(f"counted in {time.perf_counter() - t:.0f} s", flush=True)
    del msgs

    counted: set[int] = set()
    rows = []
    # The index is rebuilt from the seen table after every recovery: the same structure.
    index_traced, _ = traced(counter.rebuild_index)
    index_size = deep_size(counter.first, counted)
    rows.append(("first index", len(counter.first), index_size, index_traced))
    seen_traced, _ = traced(lambda: DictTable(_copies(seen.items())))
    rows.append(("seen table values", len(seen), deep_size(dict(seen), counted), seen_traced))
    counts_traced, _ = traced(lambda: DictTable(_copies(counts.items())))
    rows.append(("counts table", len(counts), deep_size(dict(counts), counted), counts_traced))
    view_traced, _ = traced(lambda: _rebuilt_view(count_lists(counts.items())))
    view_size = deep_size([view.series, view.duplicates, view.rejected], counted)
    rows.append(("view", sum(len(s) for s in view.series.values()), view_size, view_traced))
    # The period API's copy of the day buckets (streams/periods.py), which every worker
    # keeps by tailing the counts changelog: fed with the records the counter wrote.
    days_traced, days = traced(lambda: _day_buckets(count_lists(counts.items())))
    rows.append(("period day buckets", len(days), deep_size(days.days, counted), days_traced))
    rows.append(("RSS growth while counting", 0, rss1 - rss0, 0))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rows.append(("process peak RSS (incl. messages)", 0, peak, 0))
    return rows


def _copies(items: Iterable[tuple[str, Any]]) -> Iterable[tuple[str, Any]]:
    """Fresh copies of the values (the same shape), as a recovery would decode them."""
    for key, value in items:
        yield key, _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    if isinstance(value, bytes):
        return bytes(bytearray(value))
    return value


def _day_buckets(items: Iterable[tuple[str, Any]]) -> DayBuckets:
    buckets = DayBuckets()
    for key, value in items:
        buckets.apply(key, value)
    return buckets


def _rebuilt_view(items: Iterable[tuple[str, Any]]) -> CountsView:
    view = CountsView()
    view.rebuild(items)
    return view


def main() -> None:
    """Count BENCH_EVENTS messages and print the table."""
    total = int(os.environ.get("BENCH_EVENTS", 1_000_000))
    rows = run(total)
    print(f"\n{total:,} events, {PARTITIONS} partitions, batches of {BATCH:,}")
    print(f"{'structure':<34} {'entries':>10} {'deep MB':>9} {'B/event':>8} {'traced MB':>10}")
    for name, entries, size, trace in rows:
        print(
            f"{name:<34} {entries:>10,} {size / 1e6:>9.1f} {size / total:>8.0f}"
            f" {trace / 1e6 if trace else float('nan'):>10.1f}"
        )
    state = sum(size for _, entries, size, _ in rows if entries)
    print(f"{'state (sum of the five)':<34} {'':>10} {state / 1e6:>9.1f} {state / total:>8.0f}")


if __name__ == "__main__":
    main()
