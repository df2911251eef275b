"""Ground truth computed from what was published, independently of streams/."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
COUNTER = {
    "warrant.executed": ("ops_warrants_executed_total", ("force", "division", "origin")),
    "arrest.made": ("ops_arrests_total", ("force", "division", "origin", "previously_known")),
    "safeguarding.action": ("ops_children_safeguarded_total", ("force", "division")),
    "referral.received": (
        "ops_referrals_received_total",
        ("force", "division", "referrer", "risk"),
    ),
}


def _labels(e: Any) -> tuple[str, ...]:
    _, names = COUNTER[e.type]
    out = []
    for n in names:
        v = getattr(e, n)
        out.append(("true" if v else "false") if isinstance(v, bool) else v)
    return tuple(out)


def _units(e: Any) -> int:
    return int(getattr(e, "persons", None) or getattr(e, "children", None) or 1)


def totals(events: Iterable[Any]) -> dict[str, dict[tuple[str, ...], int]]:
    """metric name -> label values -> units, counting each event_id once."""
    out: dict[str, dict[tuple[str, ...], int]] = defaultdict(lambda: defaultdict(int))
    seen: set[str] = set()
    for e in events:
        if e.event_id in seen:
            continue
        seen.add(e.event_id)
        out[COUNTER[e.type][0]][_labels(e)] += _units(e)
    return out


def in_window(occurred: datetime, window: str, t: datetime, tz: ZoneInfo = LONDON) -> bool:
    """The contract's window membership at time t (old edge aligned as it allows)."""
    if occurred > t:
        return False
    if window in ("1h", "24h", "7d", "28d"):
        if window == "1h":
            return occurred.timestamp() // 60 > t.timestamp() // 60 - 60
        hours = {"24h": 24, "7d": 168, "28d": 672}[window]
        return occurred.timestamp() // 3600 > t.timestamp() // 3600 - hours
    d, today = occurred.astimezone(tz).date(), t.astimezone(tz).date()
    start = {
        "today": today,
        "week": today - timedelta(days=today.weekday()),
        "month": today.replace(day=1),
        "fy": date(today.year if today.month >= 4 else today.year - 1, 4, 1),
    }[window]
    return start <= d <= today


def windows(events: Iterable[Any], t: datetime) -> dict[str, dict[tuple[str, ...], int]]:
    """window gauge name -> (labels..., window) -> units at time t."""
    out: dict[str, dict[tuple[str, ...], int]] = defaultdict(lambda: defaultdict(int))
    seen: set[str] = set()
    for e in events:
        if e.event_id in seen:
            continue
        seen.add(e.event_id)
        name = COUNTER[e.type][0].removesuffix("_total") + "_window"
        for w in ("1h", "24h", "7d", "28d", "today", "week", "month", "fy"):
            if in_window(e.occurred_at, w, t):
                out[name][(*_labels(e), w)] += _units(e)
    return out
