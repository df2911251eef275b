"""An in-memory view of the counts table, and the window sums the collector exports.

The view mirrors every table write (``set``, never ``add``), so it always equals
the table; after a rebalance it is rebuilt from the table's data. It keeps each
source partition apart, so the collector can export only the partitions this
worker actively owns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

WINDOWS: Final = ("1h", "24h", "7d", "28d", "today", "week", "month", "fy")


@dataclass
class Series:
    """The buckets of one label set in one source partition."""

    minutes: dict[int, int] = field(default_factory=dict)
    hours: dict[int, int] = field(default_factory=dict)
    days: dict[int, int] = field(default_factory=dict)
    total_units: int = 0
    total_events: int = 0


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


def window_sums(series: Series, edges: Edges) -> tuple[int, ...]:
    """Units in each of WINDOWS (event time; future buckets excluded)."""
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


class CountsView:
    """Mirror of the counts table, keyed by (type code, partition)."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, int], dict[str, Series]] = defaultdict(dict)
        self.duplicates: dict[tuple[str, int], int] = {}
        self.rejected: dict[tuple[str, int, str], int] = {}

    def set(self, key: str, value: list[int] | None) -> None:
        """Mirror one table write (``None`` deletes)."""
        kind, rest = key[0], key[2:]
        if kind == "c":
            code, p, res, bucket, labels = rest.split("|", 4)
            part = self.series[(code, int(p))]
            series = part.get(labels)
            if series is None:
                series = part[labels] = Series()
            if res == "t":
                series.total_units, series.total_events = (value or [0, 0])[:2]
                return
            target = {"m": series.minutes, "h": series.hours, "d": series.days}[res]
            if value is None:
                target.pop(int(bucket), None)
            else:
                target[int(bucket)] = value[0]
        elif kind == "d":
            code, p = rest.split("|")
            self.duplicates[(code, int(p))] = value[0] if value else 0
        elif kind == "x":
            code, p, reason = rest.split("|")
            self.rejected[(code, int(p), reason)] = value[0] if value else 0

    def rebuild(self, items: Iterable[tuple[str, list[int]]]) -> None:
        """Replace the view with the table's contents."""
        self.series.clear()
        self.duplicates.clear()
        self.rejected.clear()
        for key, value in items:
            self.set(key, value)
