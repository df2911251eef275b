"""An in-memory view of the counts table, and the window sums the collector exports.

The view mirrors every table write (``set``, never ``add``), so it always equals
the table; after a rebalance it is rebuilt from the table's data. It keeps each
source partition apart, so the collector can export only the partitions this
worker actively owns.

Window sums are kept incrementally: each series holds its sum over every window's
bucket range ``(lo, hi]`` at the edges of the last export, a write adds its delta
to the windows that hold its bucket, and moving to new edges adds or subtracts only
the buckets that crossed an edge. A scrape then costs O(series) when an edge moved
(usually the minute) plus the crossed buckets, not O(every bucket). ``window_sums``
is the plain reference (the unit tests' oracle and the benchmark's old path).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from streams import shared_ints
from streams.shared_ints import shared

_SHARED = shared_ints.table()

WINDOWS: Final = ("1h", "24h", "7d", "28d", "today", "week", "month", "fy")
N_WINDOWS: Final = len(WINDOWS)
# A row of export sums: the windows, then the all-time units and events.
UNITS: Final = N_WINDOWS
EVENTS: Final = N_WINDOWS + 1
ROW: Final = N_WINDOWS + 2
# The bucket resolution each window sums: minutes, hours or days.
RES_OF_WINDOW: Final = ("m", "h", "h", "h", "d", "d", "d", "d")
WINDOWS_OF_RES: Final = {
    res: tuple(w for w, r in enumerate(RES_OF_WINDOW) if r == res) for res in "mhd"
}

Range = tuple[int, int]  # buckets b with lo < b <= hi
Row = list[int]  # ROW ints: WINDOWS sums, all-time units, all-time events


@dataclass(eq=False)
class Series:
    """The buckets of one label set in one source partition, and its window sums."""

    minutes: dict[int, int] = field(default_factory=dict)
    hours: dict[int, int] = field(default_factory=dict)
    days: dict[int, int] = field(default_factory=dict)
    total_units: int = 0
    total_events: int = 0
    # Sums of WINDOWS at the view's current ranges (maintained by CountsView).
    windows: list[int] = field(default_factory=lambda: [0] * N_WINDOWS, repr=False)
    # The export row this series adds to (its label set's), or None when not exported.
    row: Row | None = field(default=None, repr=False)

    def buckets(self, res: str) -> dict[int, int]:
        """The bucket dict of resolution ``res`` (m, h or d)."""
        return self.minutes if res == "m" else self.hours if res == "h" else self.days


@dataclass(frozen=True)
class Edges:
    """The bucket bounds of every window at one instant."""

    minute: int
    hour: int
    today: int
    week_start: int
    month_start: int
    fy_start: int

    @classmethod
    def at(cls, now: datetime, tz: ZoneInfo) -> Edges:
        """Bucket edges for ``now`` in time zone ``tz``."""
        ts = now.timestamp()
        local = now.astimezone(tz).date()
        fy_year = local.year if local.month >= 4 else local.year - 1
        return cls(
            minute=int(ts // 60),
            hour=int(ts // 3600),
            today=local.toordinal(),
            week_start=(local - timedelta(days=local.weekday())).toordinal(),
            month_start=local.replace(day=1).toordinal(),
            fy_start=date(fy_year, 4, 1).toordinal(),
        )

    def ranges(self) -> tuple[Range, ...]:
        """Each window's bucket range ``(lo, hi]``, in the order of WINDOWS.

        Calendar windows never reach back past the financial year's start (a week
        that began in March counts from 1 April), as in ``window_sums``.
        """
        fy_lo = self.fy_start - 1
        return (
            (self.minute - 60, self.minute),
            (self.hour - 24, self.hour),
            (self.hour - 168, self.hour),
            (self.hour - 672, self.hour),
            (self.today - 1, self.today),
            (max(self.week_start - 1, fy_lo), self.today),
            (max(self.month_start - 1, fy_lo), self.today),
            (fy_lo, self.today),
        )


def window_sums(series: Series, edges: Edges) -> tuple[int, ...]:
    """Units in each of WINDOWS (event time; future buckets excluded): the reference."""
    w1h = sum(u for m, u in series.minutes.items() if edges.minute - 60 < m <= edges.minute)
    w24 = w7d = w28 = 0
    for h, u in series.hours.items():
        age = edges.hour - h
        if 0 <= age < 672:
            w28 += u
            if age < 168:
                w7d += u
                if age < 24:
                    w24 += u
    today = week = month = fy = 0
    for d, u in series.days.items():
        if edges.fy_start <= d <= edges.today:
            fy += u
            if d >= edges.month_start:
                month += u
            if d >= edges.week_start:
                week += u
            if d == edges.today:
                today += u
    return (w1h, w24, w7d, w28, today, week, month, fy)


def reference_rows(
    view: CountsView, edges: Edges, active: Set[tuple[str, int]]
) -> dict[str, dict[str, Row]]:
    """What ``CountsView.export`` returns, recomputed from every bucket with ``window_sums``."""
    rows: dict[str, dict[str, Row]] = defaultdict(dict)
    for (code, p), part in view.series.items():
        if (code, p) not in active:
            continue
        for labels, series in part.items():
            row = rows[code].setdefault(labels, [0] * ROW)
            for i, v in enumerate(window_sums(series, edges)):
                row[i] += v
            row[UNITS] += series.total_units
            row[EVENTS] += series.total_events
    return rows


def _moves(old: Range, new: Range) -> list[tuple[int, int, int]]:
    """The bucket spans ``(a, b]`` that enter (+1) or leave (-1) a window moving old -> new."""
    (lo, hi), (lo2, hi2) = old, new
    if lo2 >= hi or lo >= hi2:  # disjoint (or empty): everything leaves, everything enters
        return [(lo, hi, -1), (lo2, hi2, 1)]
    spans = []
    if lo != lo2:
        spans.append((lo, lo2, -1) if lo2 > lo else (lo2, lo, 1))
    if hi != hi2:
        spans.append((hi, hi2, 1) if hi2 > hi else (hi2, hi, -1))
    return spans


def _range_sum(buckets: dict[int, int], lo: int, hi: int) -> int:
    return sum(u for b, u in buckets.items() if lo < b <= hi)


class CountsView:
    """Mirror of the counts table, keyed by (type code, partition), with window sums.

    ``export(edges, active)`` returns, per type code and label set, the sums over the
    ``active`` partitions; the rows are kept up to date by every later write, so a
    scrape only moves the window edges (usually by one minute) and reads them.
    """

    def __init__(self) -> None:
        self.series: dict[tuple[str, int], dict[str, Series]] = defaultdict(dict)
        self.duplicates: dict[tuple[str, int], int] = {}
        self.rejected: dict[tuple[str, int, str], int] = {}
        self._ranges: tuple[Range, ...] | None = None  # what every Series.windows sums
        self._active: frozenset[tuple[str, int]] | None = None  # what the rows sum
        self._rows: dict[str, dict[str, Row]] = {}
        # (type code, partition) -> a number that changes whenever one of its day
        # buckets does (never reused): lets readers cache sums over day buckets.
        self.days_version: dict[tuple[str, int], int] = {}
        self._days_clock = 0

    def set(self, key: str, value: list[int] | None) -> None:
        """Mirror one table write (``None`` deletes)."""
        kind = key[0]
        if kind == "c":
            _, code, p, res, bucket, labels = key.split("|", 5)
            self.set_count(code, int(p), res, int(bucket), labels, value)
        elif kind == "d":
            code, p = key[2:].split("|")
            self.duplicates[(code, int(p))] = value[0] if value else 0
        elif kind == "x":
            code, p, reason = key[2:].split("|")
            self.rejected[(code, int(p), reason)] = value[0] if value else 0

    def set_count(
        self, code: str, p: int, res: str, b: int, labels: str, value: list[int] | None
    ) -> None:
        """Mirror the write of the count key ``c|<code>|<p>|<res>|<b>|<labels>`` by its parts."""
        part = self.series[(code, p)]
        series = part.get(labels)
        if series is None:
            series = part[labels] = Series()
            if self._active is not None and (code, p) in self._active:
                series.row = self._row(code, labels)
        row = series.row
        if res == "t":
            units, events = (value or [0, 0])[:2]
            if row is not None:
                row[UNITS] += units - series.total_units
                row[EVENTS] += events - series.total_events
            series.total_units, series.total_events = units, events
            return
        b = _SHARED.get(b) or shared(b)  # one object per number (streams/shared_ints.py)
        if res == "h":  # Series.buckets, inlined (the commonest first)
            target = series.hours
        elif res == "m":
            target = series.minutes
        else:
            target = series.days
            if res == "d":
                self._days_clock += 1
                self.days_version[(code, p)] = self._days_clock
        if value is None:
            delta = -target.pop(b, 0)
        else:
            units = value[0]
            delta = units - target.get(b, 0)
            target[b] = units
        ranges = self._ranges
        if delta and ranges is not None:
            windows = series.windows
            for w in WINDOWS_OF_RES[res]:
                lo, hi = ranges[w]
                if lo < b <= hi:
                    windows[w] += delta
                    if row is not None:
                        row[w] += delta

    def rebuild(self, items: Iterable[tuple[str, list[int]]]) -> None:
        """Replace the view with the table's contents."""
        self.series.clear()
        self.duplicates.clear()
        self.rejected.clear()
        self._ranges = None  # window sums are recomputed at the next export
        self._active = None
        self._rows = {}
        self.days_version.clear()
        for key, value in items:
            self.set(key, value)

    def export(self, edges: Edges, active: Set[tuple[str, int]]) -> dict[str, dict[str, Row]]:
        """Per type code and label set: window sums at ``edges``, all-time units and events,
        summed over the ``active`` partitions (label sets absent there may be missing).

        The result is the view's own state, valid until the next write: read, don't keep.
        """
        self._move(edges.ranges())
        if self._active is None or active != self._active:
            self._bind(frozenset(active))
        return self._rows

    def _row(self, code: str, labels: str) -> Row:
        rows = self._rows.setdefault(code, {})
        row = rows.get(labels)
        if row is None:
            row = rows[labels] = [0] * ROW
        return row

    def _bind(self, active: frozenset[tuple[str, int]]) -> None:
        """Rebuild the export rows as sums over ``active``'s series (after a rebalance)."""
        self._active = active
        self._rows = {}
        for (code, p), part in self.series.items():
            exported = (code, p) in active
            for labels, series in part.items():
                if not exported:
                    series.row = None
                    continue
                row = series.row = self._row(code, labels)
                for w, v in enumerate(series.windows):
                    row[w] += v
                row[UNITS] += series.total_units
                row[EVENTS] += series.total_events

    def _move(self, ranges: tuple[Range, ...]) -> None:
        """Bring every series' window sums (and the rows) from the current ranges to ``ranges``."""
        old = self._ranges
        if old == ranges:
            return
        plans: list[tuple[int, str, int, list[tuple[int, int, int]]]] = []
        for w, new in enumerate(ranges):
            if old is None:
                plans.append((w, RES_OF_WINDOW[w], -1, []))  # recompute from the buckets
            elif old[w] != new:
                spans = _moves(old[w], new)
                cost = sum(b - a for a, b, _ in spans)
                plans.append((w, RES_OF_WINDOW[w], cost, spans))
        self._ranges = ranges
        for part in self.series.values():
            for series in part.values():
                windows, row = series.windows, series.row
                for w, res, cost, spans in plans:
                    buckets = series.buckets(res)
                    if not buckets:
                        continue  # its sums are 0 and stay 0
                    if cost < 0 or cost > len(buckets):
                        lo, hi = ranges[w]
                        delta = _range_sum(buckets, lo, hi) - windows[w]
                    else:
                        delta = 0
                        get = buckets.get
                        for a, b, sign in spans:
                            for bucket in range(a + 1, b + 1):
                                u = get(bucket)
                                if u:
                                    delta += sign * u
                    if delta:
                        windows[w] += delta
                        if row is not None:
                            row[w] += delta
