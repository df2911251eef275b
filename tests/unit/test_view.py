"""Window edges, window sums and what the collector exports."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, generate_latest

from opsmetrics.settings import DEFAULT_FORCES_FILE, load_forces
from streams.collector import StreamCollector
from streams.view import CountsView, Edges, Series, window_sums

TZ = ZoneInfo("Europe/London")


def test_calendar_edges() -> None:
    # Wednesday 15 January 2025, 10:00 UTC: week from Monday 13th, FY from 1 April 2024
    e = Edges.at(datetime(2025, 1, 15, 10, tzinfo=UTC), TZ)
    assert date.fromordinal(e.today) == date(2025, 1, 15)
    assert date.fromordinal(e.week_start) == date(2025, 1, 13)
    assert date.fromordinal(e.month_start) == date(2025, 1, 1)
    assert date.fromordinal(e.fy_start) == date(2024, 4, 1)
    # 23:30 UTC on 31 March 2025 is 00:30 BST on 1 April: a new financial year
    e = Edges.at(datetime(2025, 3, 31, 23, 30, tzinfo=UTC), TZ)
    assert date.fromordinal(e.fy_start) == date(2025, 4, 1)
    assert date.fromordinal(e.today) == date(2025, 4, 1)


def test_window_sums_exclude_future_and_old_buckets() -> None:
    now = datetime(2025, 6, 11, 12, 0, 30, tzinfo=UTC)
    e = Edges.at(now, TZ)
    s = Series(
        minutes={e.minute: 1, e.minute - 59: 2, e.minute - 60: 100, e.minute + 2: 1000},
        hours={
            e.hour: 1,
            e.hour - 23: 2,
            e.hour - 24: 4,
            e.hour - 167: 8,
            e.hour - 671: 16,
            e.hour - 672: 1000,
            e.hour + 1: 1000,
        },
        days={
            e.today: 1,
            e.week_start: 2,
            e.month_start: 4,
            e.fy_start: 8,
            e.fy_start - 1: 1000,
            e.today + 1: 1000,
        },
    )
    w1h, w24, w7d, w28, today, week, month, fy = window_sums(s, e)
    assert (w1h, w24, w7d, w28) == (3, 3, 15, 31)
    assert (today, week, month, fy) == (1, 3, 7, 15)


def _collector(view: CountsView, ready: bool) -> bytes:
    registry = CollectorRegistry()
    registry.register(
        StreamCollector(
            view,
            load_forces(DEFAULT_FORCES_FILE),
            TZ,
            active=lambda: {("r", 0), ("r", 1)} if ready else None,
            clock=lambda: datetime(2025, 6, 11, 12, tzinfo=UTC),
            last_event={},
            lag=lambda: {},
        )
    )
    return generate_latest(registry)


def test_nothing_counted_is_exported_while_recovering() -> None:
    text = _collector(CountsView(), ready=False).decode()
    assert "ops_referrals_received_total" not in text
    assert "ops_worker_partition_active" not in text
    assert "ops_consumer_lag" in text


def test_zeros_for_every_configured_label_set_and_only_those() -> None:
    view = CountsView()
    view.set("c|r|0|t|0|lancashire,east,nca,high", [2, 2, 5])
    view.set("c|r|1|t|0|lancashire,east,nca,high", [3, 3, 9])
    view.set("c|r|2|t|0|lancashire,east,nca,high", [1000, 1000, 9])  # not active here
    view.set("c|r|0|t|0|lancashire,north,nca,high", [7, 7, 6])  # division no longer configured
    text = _collector(view, ready=True).decode()
    lines = [ln for ln in text.splitlines() if ln.startswith("ops_referrals_received_total{")]
    assert len(lines) == 3 * 7 * 5  # divisions x referrers x risks
    east = 'division="east",force="lancashire",referrer="nca",risk="high"'
    assert f"ops_referrals_received_total{{{east}}} 5.0" in lines
    assert "north" not in text
    assert 'ops_worker_partition_active{partition="0"} 1.0' in text


def test_configured_referral_rate_is_exported_even_while_recovering() -> None:
    text = _collector(CountsView(), ready=False).decode()
    # 1,500 a year shared by three divisions; every worker exports it (rules take max)
    assert 'ops_referrals_expected_per_year{division="east",force="lancashire"} 500.0' in text
