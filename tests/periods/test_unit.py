"""The pure parts of the period API: parameters, day buckets, answers, the FY gauge."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from opsmetrics.settings import DEFAULT_FORCES_FILE, Force, Settings, load_forces
from streams.periods import (
    GROUP_BY,
    MEASURES,
    ChangelogReader,
    DayBuckets,
    NotCaughtUp,
    ParamError,
    PeriodCollector,
    Query,
    answer,
    decode_key,
    decode_value,
    iso_week,
    parse_query,
    period_bounds,
)
from streams.view import CountsView

FORCES = load_forces(DEFAULT_FORCES_FILE)
TZ = ZoneInfo("Europe/London")
D = date(2025, 10, 26).toordinal()


def _force(divisions: list[str]) -> Force:
    return FORCES["lancashire"].model_copy(update={"divisions": divisions})


TWO_FORCES = {"lancashire": _force(["east", "south", "west"]), "kent": _force(["east", "north"])}


def key(code: str, p: int, day: int, labels: str, res: str = "d") -> str:
    return f"c|{code}|{p}|{res}|{day}|{labels}"


# ------------------------------------------------------------------ parameters
def q(text: str, forces: dict[str, Force] = FORCES) -> Query:
    pairs = [tuple(p.split("=", 1)) for p in text.split("&")]
    return parse_query(pairs, forces)  # type: ignore[arg-type]


def test_a_valid_query() -> None:
    assert q("from=2025-04-01&to=2025-09-30") == Query(date(2025, 4, 1), date(2025, 9, 30))
    got = q("group_by=week&to=2025-04-01&division=east&from=2025-04-01")
    assert got == Query(date(2025, 4, 1), date(2025, 4, 1), "lancashire", "east", "week")


@pytest.mark.parametrize(
    ("text", "parameter", "words"),
    [
        ("to=2025-01-01", "from", "required"),
        ("from=2025-01-01", "to", "required"),
        ("from=2025-4-1&to=2025-09-30", "from", "YYYY-MM-DD"),
        ("from=２０２５-04-01&to=2025-09-30", "from", "YYYY-MM-DD"),  # non-ASCII digits
        ("from=2025-W14-1&to=2025-09-30", "from", "YYYY-MM-DD"),
        ("from=2025-02-29&to=2025-09-30", "from", "not a real date"),
        ("from=2025-09-30&to=2025-04-01", "to", "before from"),
        ("from=1900-01-01&to=2001-01-01", "to", "at most"),
        ("from=2025-04-01&to=2025-04-01&force=Lancashire", "force", "unknown force"),
        ("from=2025-04-01&to=2025-04-01&division=north", "division", "not a division"),
        ("from=2025-04-01&to=2025-04-01&group_by=year", "group_by", "one of"),
        ("from=2025-04-01&to=2025-04-01&to=2025-04-02", "to", "more than once"),
        ("from=2025-04-01&to=2025-04-01&limit=5", "limit", "unknown parameter"),
    ],
)
def test_bad_parameters_are_named(text: str, parameter: str, words: str) -> None:
    with pytest.raises(ParamError) as info:
        q(text)
    assert info.value.parameter == parameter
    assert words in info.value.message
    assert info.value.body() == {
        "error": "invalid_parameter",
        "parameter": parameter,
        "message": info.value.message,
    }


def test_a_division_of_two_forces_needs_the_force() -> None:
    with pytest.raises(ParamError, match="give force too") as info:
        q("from=2025-04-01&to=2025-04-01&division=east", TWO_FORCES)
    assert info.value.parameter == "division"
    assert q("from=2025-04-01&to=2025-04-01&division=north", TWO_FORCES).force == "kent"
    assert q("from=2025-04-01&to=2025-04-01&force=kent&division=east", TWO_FORCES).force == "kent"
    with pytest.raises(ParamError, match="force 'kent'"):
        q("from=2025-04-01&to=2025-04-01&force=kent&division=west", TWO_FORCES)


# ------------------------------------------------------------------ day buckets
def test_day_buckets_keep_the_latest_day_value_only() -> None:
    b = DayBuckets()
    b.apply(key("w", 0, D, "lancashire,east,proactive"), [1, 1, 10])
    b.apply(key("w", 0, D, "lancashire,east,proactive"), [2, 2, 12])  # later write wins
    b.apply(key("w", 3, D, "lancashire,east,proactive"), [5, 5, 7])  # another partition adds
    for res in ("m", "h", "t"):
        b.apply(key("w", 0, D, "lancashire,east,proactive", res), [100, 100, 1])
    b.apply("d|w|0", [9, 9, 9])
    b.apply("x|w|0|schema", [9, 9, 9])
    b.apply(key("q", 0, D, "lancashire,east"), [9, 9, 9])  # an unknown type code
    assert sorted(b.between(date(2025, 10, 26), date(2025, 10, 26))) == [
        (D, "w", ("lancashire", "east", "proactive"), 2),
        (D, "w", ("lancashire", "east", "proactive"), 5),
    ]
    b.apply(key("w", 3, D, "lancashire,east,proactive"), None)  # a tombstone deletes
    assert len(b) == 1
    b.apply(key("w", 0, D, "lancashire,east,proactive"), None)
    assert b.days == {}


def test_day_buckets_share_one_bucket_per_series_across_days() -> None:
    """Memory: the days of one (type, partition, labels) hold one bucket tuple."""
    b = DayBuckets()
    for day in range(D, D + 3):
        b.apply(key("w", 0, day, "lancashire,east,proactive"), [day - D + 1, 1, 10])
    b.apply(key("w", 1, D, "lancashire,east,proactive"), [7, 1, 10])
    buckets = [bucket for day in range(D, D + 3) for bucket in b.days[day] if bucket[1] == 0]
    assert len(buckets) == 3
    assert len({id(bucket) for bucket in buckets}) == 1
    assert sorted(n for *_, n in b.between(date(2025, 10, 26), date(2025, 10, 28))) == [1, 2, 3, 7]


@given(
    st.dictionaries(st.integers(D - 400, D + 400), st.integers(1, 9), max_size=40),
    st.integers(D - 500, D + 500),
    st.integers(0, 1000),
)
def test_between_is_inclusive_whichever_way_it_scans(
    days: dict[int, int], lo: int, span: int
) -> None:
    b = DayBuckets()
    for day, n in days.items():
        b.apply(key("r", 1, day, "lancashire,west,iwf,high"), [n, n, 1])
    start, end = date.fromordinal(lo), date.fromordinal(lo + span)
    got = sorted((d, n) for d, _, _, n in b.between(start, end))
    assert got == sorted((d, n) for d, n in days.items() if lo <= d <= lo + span)


def test_changelog_bytes_are_decoded() -> None:
    k = key("a", 2, D, "lancashire,east,referral,true")
    assert decode_key(orjson.dumps(k)) == k  # Faust's JSON codec
    assert decode_key(k.encode()) == k  # raw keys
    assert decode_key(None) is None
    assert decode_value(b"[3,2,17]") == [3, 2, 17]
    assert decode_value(None) is None


# ------------------------------------------------------------------ answers
def buckets(*items: tuple[date, str, str, int]) -> list[tuple[int, str, tuple[str, ...], int]]:
    return [(d.toordinal(), code, tuple(labels.split(",")), n) for d, code, labels, n in items]


SAMPLE = buckets(
    (date(2025, 3, 31), "w", "lancashire,east,proactive", 1),  # Monday, W14
    (date(2025, 4, 6), "a", "lancashire,south,referral,false", 3),  # Sunday, W14
    (date(2025, 4, 7), "a", "lancashire,south,referral,true", 2),  # Monday, W15
    (date(2025, 4, 30), "s", "lancashire,west", 4),
    (date(2025, 5, 1), "r", "lancashire,west,iwf,high", 1),
    (date(2025, 5, 1), "r", "lancashire,east,nca,low", 1),
    (date(2025, 5, 2), "r", "lancashire,north,nca,low", 1),  # division no longer configured
)


def ask(
    group_by: str | None = None,
    start: date = date(2025, 3, 1),
    end: date = date(2025, 5, 31),
    **kw: Any,
) -> dict[str, Any]:
    return answer(SAMPLE, Query(start, end, group_by=group_by, **kw), FORCES, "Europe/London")


def test_totals_and_the_answer_shape() -> None:
    body = ask()
    assert body == {
        "from": "2025-03-01",
        "to": "2025-05-31",
        "timezone": "Europe/London",
        "force": None,
        "division": None,
        "group_by": None,
        "totals": {
            "warrants_executed": 1,
            "arrests": 5,
            "children_safeguarded": 4,
            "referrals_received": 3,
        },
        "groups": [],
    }
    assert ask(division="west", force="lancashire")["totals"] == {
        "warrants_executed": 0,
        "arrests": 0,
        "children_safeguarded": 4,
        "referrals_received": 1,
    }


def test_groups_by_label_have_null_for_measures_without_that_label() -> None:
    groups = ask("previously_known")["groups"]
    assert groups == [
        {
            "key": {"previously_known": False},
            "totals": {
                "warrants_executed": None,
                "arrests": 3,
                "children_safeguarded": None,
                "referrals_received": None,
            },
        },
        {
            "key": {"previously_known": True},
            "totals": {
                "warrants_executed": None,
                "arrests": 2,
                "children_safeguarded": None,
                "referrals_received": None,
            },
        },
    ]
    origin = {g["key"]["origin"]: g["totals"] for g in ask("origin")["groups"]}
    assert origin["proactive"]["warrants_executed"] == 1
    assert origin["referral"]["arrests"] == 5
    assert origin["referral"]["referrals_received"] is None
    risk = [g["key"]["risk"] for g in ask("risk")["groups"]]
    assert risk == ["very_high", "high", "medium", "low", "ungraded"]  # all, zeros included
    referrer = {
        g["key"]["referrer"]: g["totals"]["referrals_received"] for g in ask("referrer")["groups"]
    }
    assert referrer == {
        "nca": 2,
        "ncmec": 0,
        "iwf": 1,
        "partner_agency": 0,
        "public": 0,
        "internal": 0,
        "other": 0,
    }


def test_groups_by_division_list_configured_then_others() -> None:
    groups = ask("division")["groups"]
    assert [g["key"] for g in groups] == [
        {"force": "lancashire", "division": "east"},
        {"force": "lancashire", "division": "south"},
        {"force": "lancashire", "division": "west"},
        {"force": "lancashire", "division": "north"},
    ]
    assert groups[3]["totals"]["referrals_received"] == 1
    only_west = ask("division", force="lancashire", division="west")["groups"]
    assert [g["key"]["division"] for g in only_west] == ["west"]


def test_iso_weeks_start_on_monday_and_are_clipped_to_the_range() -> None:
    groups = ask("week", start=date(2025, 4, 2), end=date(2025, 4, 16))["groups"]
    assert [(g["key"]["week"], g["from"], g["to"]) for g in groups] == [
        ("2025-W14", "2025-04-02", "2025-04-06"),
        ("2025-W15", "2025-04-07", "2025-04-13"),
        ("2025-W16", "2025-04-14", "2025-04-16"),
    ]
    assert groups[0]["totals"]["arrests"] == 3  # Sunday 6 April is in W14
    assert groups[1]["totals"]["arrests"] == 2  # Monday 7 April starts W15
    assert iso_week(date(2024, 12, 30)) == "2025-W01"  # ISO year differs from calendar year
    assert iso_week(date(2021, 1, 3)) == "2020-W53"
    assert iso_week(date(346, 3, 6)) == "0346-W10"  # four-digit years, as in dates


def test_months_are_clipped_to_the_range() -> None:
    groups = ask("month", start=date(2025, 3, 31), end=date(2025, 5, 1))["groups"]
    assert [(g["key"]["month"], g["from"], g["to"]) for g in groups] == [
        ("2025-03", "2025-03-31", "2025-03-31"),
        ("2025-04", "2025-04-01", "2025-04-30"),
        ("2025-05", "2025-05-01", "2025-05-01"),
    ]
    assert [g["totals"]["warrants_executed"] for g in groups] == [1, 0, 0]
    december = ask("month", start=date(2024, 12, 31), end=date(2025, 1, 1))["groups"]
    assert [g["key"]["month"] for g in december] == ["2024-12", "2025-01"]
    leap = ask("month", start=date(2024, 2, 1), end=date(2024, 3, 31))["groups"]
    assert [g["to"] for g in leap] == ["2024-02-29", "2024-03-31"]


@pytest.mark.parametrize("group_by", ["week", "month"])
def test_the_last_representable_days(group_by: str) -> None:
    body = ask(group_by, start=date(9999, 12, 1), end=date(9999, 12, 31))
    assert body["groups"][-1]["to"] == "9999-12-31"
    first = ask(group_by, start=date(1, 1, 1), end=date(1, 1, 9))["groups"]
    assert first[0]["from"] == "0001-01-01"


@given(
    st.lists(
        st.tuples(
            st.integers(0, 120),
            st.sampled_from(list(MEASURES)),
            st.sampled_from(["east", "south", "west"]),
            st.integers(1, 50),
        ),
        max_size=60,
    ),
    st.integers(0, 120),
    st.integers(0, 120),
    st.sampled_from(GROUP_BY),
)
def test_groups_add_up_and_ranges_are_additive(
    raw: list[tuple[int, str, str, int]], a: int, b: int, group_by: str
) -> None:
    labels = {"w": "{},proactive", "a": "{},referral,true", "s": "{}", "r": "{},iwf,low"}
    base = date(2025, 9, 1).toordinal()
    items = [
        (base + d, code, tuple(("lancashire," + labels[code].format(div)).split(",")), n)
        for d, code, div, n in raw
    ]
    lo, hi = sorted((a, b))
    start, end = date.fromordinal(base + lo), date.fromordinal(base + hi)

    def run(s: date, e: date, g: str | None = None) -> dict[str, Any]:
        inside = [i for i in items if s.toordinal() <= i[0] <= e.toordinal()]
        return answer(inside, Query(s, e, group_by=g), FORCES, "Europe/London")

    whole = run(start, end, group_by)
    for measure, total in whole["totals"].items():
        values = [g["totals"][measure] for g in whole["groups"]]
        if any(v is not None for v in values):
            assert sum(values) == total
    if start < end:
        split = start + timedelta(days=(end - start).days // 2)
        left, right = run(start, split), run(split + timedelta(days=1), end)
        for m in MEASURES.values():
            assert left["totals"][m] + right["totals"][m] == whole["totals"][m]


# ------------------------------------------------------------------ the reader's waiting
class FakeRecord:
    def __init__(self, offset: int, key: bytes, value: bytes | None) -> None:
        self.offset, self.key, self.value = offset, key, value


class FakeConsumer:
    """Just enough of AIOKafkaConsumer, over an in-memory log (unit test of the waiting)."""

    log: ClassVar[dict[int, list[FakeRecord]]] = {}

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.pos: dict[Any, int] = {}

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def topics(self) -> set[str]:
        return {"ops.stream-counts-changelog"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.log)

    def assign(self, tps: list[Any]) -> None:
        self.pos = dict.fromkeys(tps, 0)

    async def seek_to_beginning(self, *tps: Any) -> None:
        for tp in tps:
            self.pos[tp] = 0

    def seek(self, tp: Any, offset: int) -> None:
        self.pos[tp] = offset

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[FakeRecord]]:
        await asyncio.sleep(timeout_ms / 1000)
        out = {}
        for tp, at in self.pos.items():
            records = [r for r in self.log[tp.partition] if r.offset >= at][:2]
            if records:
                out[tp] = records
                self.pos[tp] = records[-1].offset + 1
        return out

    async def position(self, tp: Any) -> int:
        return self.pos[tp]

    async def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: len(self.log[tp.partition]) for tp in tps}


async def test_catch_up_waits_for_the_end_offsets_of_every_partition(tmp_path: Any) -> None:
    k = key("r", 0, D, "lancashire,east,nca,low")
    FakeConsumer.log = {
        p: [
            FakeRecord(i, orjson.dumps(k.replace("|0|", f"|{p}|")), orjson.dumps([i + 1, 1, i]))
            for i in range(5)
        ]
        for p in range(3)
    }
    reader = ChangelogReader(
        Settings(data_dir=tmp_path),
        "ops.stream-counts-changelog",
        3,
        consumer_factory=FakeConsumer,
        poll_ms=10,
    )
    with pytest.raises(NotCaughtUp):
        await reader.catch_up(0.05)  # not connected yet
    task = asyncio.create_task(reader.run())
    await reader.catch_up(5)
    assert sorted(
        n for *_, n in reader.buckets.between(date(2025, 10, 26), date(2025, 10, 26))
    ) == [5, 5, 5]
    FakeConsumer.log[1].append(FakeRecord(5, orjson.dumps(k.replace("|0|", "|1|")), None))
    await reader.catch_up(5)  # read-your-writes: the tombstone is applied before answering
    assert len(reader.buckets) == 2
    await reader.stop()
    await asyncio.wait_for(task, 5)


async def test_owned_partitions_are_answered_from_the_view_and_lost_ones_read_again(
    tmp_path: Any,
) -> None:
    """Owned partitions: answered from the view as it is written, never read.

    A partition the worker loses is read again from the changelog's beginning, so what
    its next owner wrote is in the answers.
    """
    lab = "lancashire,east,nca,low"
    FakeConsumer.log = {
        p: [
            FakeRecord(i, orjson.dumps(key("r", p, D, lab)), orjson.dumps([i + 1, 1, i]))
            for i in range(3)
        ]
        for p in range(3)
    }
    view = CountsView()
    reader = ChangelogReader(
        Settings(data_dir=tmp_path),
        "ops.stream-counts-changelog",
        3,
        view=view,
        consumer_factory=FakeConsumer,
        poll_ms=10,
    )

    def total() -> int:
        return sum(n for *_, n in reader.between(date(2025, 10, 26), date(2025, 10, 26)))

    view.set(key("r", 0, D, lab), [40, 4, 9])  # the recovered table, mirrored
    view.set(key("r", 0, D, lab, "h"), [1, 1, 9])
    reader.own({0})  # before run: the first assignment skips partition 0
    task = asyncio.create_task(reader.run())
    await reader.catch_up(5)
    assert total() == 40 + 3 + 3  # partition 0 from the view, the others read
    assert reader.records == 6  # partition 0's changelog was never read
    view.set(key("r", 0, D, lab), [41, 5, 10])  # an own write: answered at once
    view.set(key("r", 1, D, lab), [99, 9, 10])  # not owned: the changelog decides
    assert total() == 41 + 3 + 3
    FakeConsumer.log[0].append(
        FakeRecord(3, orjson.dumps(key("r", 0, D, lab)), orjson.dumps([7, 1, 3]))
    )
    await reader.catch_up(5)  # owned partitions are not waited for ...
    assert total() == 41 + 3 + 3  # ... nor read
    reader.release()  # revoked: partition 0's next owner writes the changelog
    await reader.catch_up(5)
    assert total() == 7 + 3 + 3  # read again from the beginning: the changelog's latest
    view.set(key("r", 1, D, lab), [50, 5, 20])
    reader.own({1, 2})
    await reader.catch_up(5)
    assert total() == 7 + 50 + 0  # 1 and 2 from the view (2 has no day bucket there)
    reader.release()
    await reader.catch_up(5)
    assert total() == 7 + 3 + 3  # the changelog's values again
    await reader.stop()
    await asyncio.wait_for(task, 5)


# ------------------------------------------------------------------ the financial-year gauge
def test_period_bounds() -> None:
    b = period_bounds(date(2026, 11, 28))
    o = date.toordinal
    assert b["fy"] == (o(date(2026, 4, 1)), o(date(2026, 11, 28)))
    assert b["previous_fy"] == (o(date(2025, 4, 1)), o(date(2026, 3, 31)))
    assert b["previous_fy_to_date"] == (o(date(2025, 4, 1)), o(date(2025, 11, 28)))
    assert period_bounds(date(2028, 2, 29))["previous_fy_to_date"][1] == o(date(2027, 2, 28))
    assert period_bounds(date(2026, 3, 31))["fy"][0] == o(date(2025, 4, 1))


def test_period_collector_exports_active_partitions_by_period() -> None:
    view = CountsView()

    def day(y: int, m: int, d: int) -> int:
        return date(y, m, d).toordinal()

    view.set(key("w", 0, day(2026, 4, 1), "lancashire,east,proactive"), [2, 2, 1])
    view.set(key("w", 0, day(2025, 11, 28), "lancashire,east,referral"), [3, 3, 2])
    view.set(key("w", 0, day(2025, 11, 29), "lancashire,east,referral"), [5, 5, 3])
    view.set(key("w", 0, day(2025, 3, 31), "lancashire,east,referral"), [100, 1, 4])  # FY 2024
    view.set(key("w", 1, day(2026, 5, 1), "lancashire,east,proactive"), [1000, 1, 1])  # not active
    view.set(key("a", 0, day(2026, 11, 28), "lancashire,west,referral,false"), [4, 1, 5])
    view.set(
        key("a", 0, day(2026, 11, 29), "lancashire,west,referral,false"), [1000, 1, 6]
    )  # future
    active: set[tuple[str, int]] | None = {("w", 0), ("a", 0)}
    clock = datetime(2026, 11, 28, 12, tzinfo=UTC)
    registry = CollectorRegistry()
    registry.register(PeriodCollector(view, FORCES, TZ, lambda: active, lambda: clock))
    samples = {
        (s.labels["measure"], s.labels["division"], s.labels["period"]): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }
    assert len(samples) == 4 * 3 * 3  # every measure, division and period, zeros included
    assert samples[("warrants_executed", "east", "fy")] == 2
    assert samples[("warrants_executed", "east", "previous_fy")] == 8
    assert samples[("warrants_executed", "east", "previous_fy_to_date")] == 3
    assert samples[("arrests", "west", "fy")] == 4
    assert samples[("referrals_received", "south", "fy")] == 0
    active = None  # restoring after a rebalance: nothing exported
    assert generate_latest(registry).decode().count("ops_period_units{") == 0


def test_period_collector_follows_writes_and_the_date_after_caching() -> None:
    """Cached sums are redone when a partition's day buckets change or the date moves."""
    view = CountsView()
    labels = "lancashire,east,proactive"
    view.set(key("w", 0, date(2026, 11, 27).toordinal(), labels), [2, 2, 1])
    clock = [datetime(2026, 11, 28, 12, tzinfo=UTC)]
    collector = PeriodCollector(view, FORCES, TZ, lambda: {("w", 0)}, lambda: clock[0])

    def fy() -> tuple[float, float]:
        got = {
            s.labels["period"]: s.value
            for m in collector.collect()
            for s in m.samples
            if (s.labels["measure"], s.labels["division"]) == ("warrants_executed", "east")
        }
        return got["fy"], got["previous_fy"]

    assert fy() == (2, 0)
    assert fy() == (2, 0)  # from the cache
    view.set(key("w", 0, date(2026, 11, 27).toordinal(), labels), [7, 3, 2])  # same bucket
    view.set(key("w", 0, date(2026, 4, 2).toordinal(), labels), [1, 1, 3])
    assert fy() == (8, 0)
    clock[0] = datetime(2027, 4, 1, 12, tzinfo=UTC)  # a new financial year
    assert fy() == (0, 8)
