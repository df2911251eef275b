"""Ground truth for period queries, computed from the published events alone.

Independent of streams/: local dates with zoneinfo, weeks with ``isocalendar``,
units and label values read from the event models' fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
MEASURE = {
    "warrant.executed": "warrants_executed",
    "arrest.made": "arrests",
    "safeguarding.action": "children_safeguarded",
    "referral.received": "referrals_received",
}
MEASURES = tuple(MEASURE.values())


def local_day(e: Any) -> date:
    day: date = e.occurred_at.astimezone(LONDON).date()
    return day


def units(e: Any) -> int:
    if e.type == "arrest.made":
        return int(e.persons)
    if e.type == "safeguarding.action":
        return int(e.children)
    return 1


def _key(e: Any, group_by: str) -> tuple[Any, ...] | None:
    """The group key of an event as the API spells it, or None (dimension not applicable)."""
    day = local_day(e)
    if group_by == "week":
        year, week, _ = day.isocalendar()
        return (("week", f"{year}-W{week:02d}"),)
    if group_by == "month":
        return (("month", day.strftime("%Y-%m")),)
    if group_by == "division":
        return (("division", e.division), ("force", e.force))
    if not hasattr(e, group_by):
        return None
    return ((group_by, getattr(e, group_by)),)


def applies(measure: str, group_by: str | None) -> bool:
    """Whether the events of ``measure`` carry the ``group_by`` dimension."""
    fields = {
        "warrants_executed": {"origin"},
        "arrests": {"origin", "previously_known"},
        "children_safeguarded": set(),
        "referrals_received": {"referrer", "risk"},
    }[measure]
    return group_by in (None, "week", "month", "division") or group_by in fields


def figures(
    events: Iterable[Any],
    start: date,
    end: date,
    *,
    force: str | None = None,
    division: str | None = None,
    group_by: str | None = None,
) -> tuple[dict[str, int], dict[tuple[Any, ...], dict[str, int | None]]]:
    """(totals, groups by sorted key items) for inclusive local dates, each event_id once."""
    totals = dict.fromkeys(MEASURES, 0)
    groups: dict[tuple[Any, ...], dict[str, int | None]] = {}
    seen: set[str] = set()
    for e in events:
        if e.event_id in seen:
            continue
        seen.add(e.event_id)
        if not start <= local_day(e) <= end:
            continue
        if (force and e.force != force) or (division and e.division != division):
            continue
        measure = MEASURE[e.type]
        totals[measure] += units(e)
        if group_by is None:
            continue
        key = _key(e, group_by)
        if key is None:
            continue
        group = groups.setdefault(key, {m: (0 if applies(m, group_by) else None) for m in MEASURES})
        group[measure] = (group[measure] or 0) + units(e)
    return totals, groups
