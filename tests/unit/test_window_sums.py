"""Incremental window sums equal the reference ``window_sums`` after any writes and moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.view import CountsView, Edges, reference_rows, window_sums

TZ = ZoneInfo("Europe/London")
# Starting instants near the edges that move rarely: DST starts (01:00 UTC) and ends,
# a financial year starts (1 April 00:00 BST), a year, month and week turn over.
STARTS = (
    datetime(2025, 3, 30, 0, 40, tzinfo=UTC),
    datetime(2025, 10, 26, 0, 40, tzinfo=UTC),
    datetime(2025, 3, 31, 22, 50, tzinfo=UTC),
    datetime(2025, 12, 31, 23, 50, tzinfo=UTC),
    datetime(2025, 6, 29, 22, 59, 30, tzinfo=UTC),  # Sunday 23:59 BST; Monday 30 June
    datetime(2024, 2, 28, 23, 30, tzinfo=UTC),
)
SERIES = [(code, p, labels) for code in "rs" for p in range(3) for labels in ("a,b", "a,c")]
PARTITIONS = sorted({(code, p) for code, p, _ in SERIES})

steps = st.one_of(
    st.integers(-120, 120),  # seconds: often within one minute
    st.integers(-3 * 3600, 3 * 3600),
    st.integers(-40 * 86400, 40 * 86400),
    st.sampled_from([60, -60, 3600, -3600, 86400, -86400, 7 * 86400, -7 * 86400, 365 * 86400]),
)
writes = st.tuples(
    st.sampled_from(SERIES),
    st.sampled_from("mmhhdt"),
    st.integers(0, 4),  # which window edge the bucket is near
    st.one_of(st.integers(-2, 2), st.integers(-700, 5)),  # how near
    st.one_of(st.none(), st.integers(0, 50)),
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("set"), writes),
        st.tuples(st.just("move"), steps),
        st.tuples(st.just("export"), st.frozensets(st.sampled_from(PARTITIONS))),
        st.tuples(st.just("rebuild"), st.none()),
    ),
    max_size=80,
)


def bucket(edges: Edges, res: str, anchor: int, offset: int) -> int:
    """A bucket of resolution ``res`` at ``offset`` from one of the windows' edges
    (a wide offset is folded into about twice the window's length for minutes and days)."""
    near = {
        "m": (edges.minute, edges.minute - 60),
        "h": (edges.hour, edges.hour - 24, edges.hour - 168, edges.hour - 672),
        "d": (edges.today, edges.week_start, edges.month_start, edges.fy_start, edges.today - 1),
    }.get(res)
    if near is None:
        return 0
    fold = {"m": 136, "d": 406}.get(res)
    if fold and abs(offset) > 2:
        offset = offset % fold - fold // 2
    return near[anchor % len(near)] + offset


def check(view: CountsView, edges: Edges, active: frozenset[tuple[str, int]]) -> None:
    rows = view.export(edges, active)
    assert rows == reference_rows(view, edges, active)
    for part in view.series.values():
        for series in part.values():
            assert tuple(series.windows) == window_sums(series, edges)


@settings(max_examples=400, deadline=None)
@given(start=st.sampled_from(STARTS), ops=ops)
def test_incremental_sums_equal_the_reference(start: datetime, ops: list[Any]) -> None:
    view = CountsView()
    by_parts = CountsView()  # the same writes by their parts (set_count, as the counter does)
    table: dict[str, list[int]] = {}  # what the view mirrors
    now, active = start, frozenset(PARTITIONS[:3])
    edges = Edges.at(now, TZ)
    for op, arg in ops:
        if op == "set":
            (code, p, labels), res, anchor, offset, value = arg
            b = bucket(edges, res, anchor, offset)
            key = f"c|{code}|{p}|{res}|{b}|{labels}"
            if value is None:
                table.pop(key, None)
            else:
                table[key] = [value, value, 1]
            view.set(key, None if value is None else [value, value, 1])
            by_parts.set_count(
                code, p, res, b, labels, None if value is None else [value] * 2 + [1]
            )
        elif op == "move":
            now += timedelta(seconds=arg)
            edges = Edges.at(now, TZ)
        elif op == "export":
            active = arg
        else:
            view.rebuild(list(table.items()))
            by_parts.rebuild(list(table.items()))
        check(view, edges, active)
        check(by_parts, edges, active)
        assert by_parts.export(edges, active) == view.export(edges, active)
        assert by_parts.days_version == view.days_version


MOVES = (1, 30, 60, -60, 61 * 60, 3600, -3600, 86400, -86400, 7 * 86400, -7 * 86400, 400 * 86400)


@pytest.mark.parametrize("start", STARTS)
def test_every_bucket_next_to_an_edge_crosses_it_exactly(start: datetime) -> None:
    """Dense: a distinct count in every bucket within 3 of any edge, before and after a move."""
    for step in MOVES:
        view = CountsView()
        before, after = Edges.at(start, TZ), Edges.at(start + timedelta(seconds=step), TZ)
        value = 1
        for edges in (before, after):
            for res in "mhd":
                for anchor in range(5):
                    for offset in range(-3, 4):
                        value *= 2  # every subset of buckets has its own sum
                        key = f"c|r|0|{res}|{bucket(edges, res, anchor, offset)}|x"
                        view.set(key, [value, 1, 1])
        check(view, before, {("r", 0)})
        view.set(f"c|r|0|m|{before.minute - 60}|x", [3, 1, 1])  # a write at an edge, then move
        check(view, after, {("r", 0)})


def test_a_write_after_export_updates_only_the_windows_holding_its_bucket() -> None:
    view = CountsView()
    edges = Edges.at(datetime(2025, 6, 11, 12, 0, 30, tzinfo=UTC), TZ)
    active = {("r", 0)}
    assert view.export(edges, active) == {}
    view.set(f"c|r|0|h|{edges.hour - 30}|x", [5, 5, 1])  # in 7d and 28d, not 24h
    view.set(f"c|r|0|h|{edges.hour + 1}|x", [7, 7, 2])  # in the future: nowhere yet
    view.set(f"c|r|1|h|{edges.hour}|x", [9, 9, 3])  # a partition not exported
    assert view.export(edges, active)["r"]["x"][:4] == [0, 0, 5, 5]
    later = Edges.at(datetime(2025, 6, 11, 13, 0, 30, tzinfo=UTC), TZ)
    assert view.export(later, active)["r"]["x"][:4] == [0, 7, 12, 12]
    assert view.export(later, {("r", 0), ("r", 1)})["r"]["x"][:4] == [0, 16, 21, 21]


def test_the_collector_renders_exactly_what_the_old_collector_rendered() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from benchmarks.render import LegacyCollector, build_view
    from opsmetrics.settings import DEFAULT_FORCES_FILE, load_forces
    from streams.collector import StreamCollector

    forces = load_forces(DEFAULT_FORCES_FILE)
    start = datetime(2025, 3, 31, 21, 30, tzinfo=UTC)  # the FY turns 2.5 hours later
    view = build_view(forces, 3000, start + timedelta(days=2))  # some buckets in the future
    clock = [start]
    active = {("r", 0), ("r", 3), ("a", 1), ("s", 5), ("w", 2)}
    texts = []
    for cls in (LegacyCollector, StreamCollector):
        registry = CollectorRegistry()
        registry.register(
            cls(
                view,
                forces,
                tz=TZ,
                active=lambda: active,
                clock=lambda: clock[0],
                last_event={},
                lag=lambda: {},
            )
        )
        texts.append(lambda r=registry: generate_latest(r))
    old, new = texts
    for step in (0, 60, 600, 3600, 7200, 86400, 3 * 86400, 40):
        clock[0] += timedelta(seconds=step)
        assert new() == old()
        edges = Edges.at(clock[0], TZ)
        view.set(f"c|r|0|h|{edges.hour}|lancashire,east,nca,high", [4, 4, 9])
        view.set(f"c|r|0|m|{edges.minute - 1}|lancashire,east,nca,high", [2, 2, 9])
    assert b'nca",risk="high",window="1h"} 2.0' in new()
    active.add(("r", 1))
    assert new() == old()
