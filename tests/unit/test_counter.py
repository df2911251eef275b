"""Exactly-once counting over at-least-once delivery, without Kafka (dict tables)."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.contract.classify import Classifier
from services.contract.events import ReferralReceived, SafeguardingAction
from services.publisher import encode
from streams.counter import (
    DictTable,
    EventCounter,
    Message,
    Result,
    Sighting,
    canonical_partition,
    count_fields,
    count_lists,
    message_stamp,
    pack_count,
    pack_seen,
    seen_entries,
)
from streams.view import CountsView

TZ = ZoneInfo("Europe/London")
NOW = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
P = 6
TOPICS = {"ops.referrals": "r", "ops.safeguarding": "s"}


def make(
    counts: DictTable | None = None,
    seen: DictTable | None = None,
    view: CountsView | None = None,
) -> EventCounter:
    classifier = Classifier.for_prefix("ops.", {"lancashire": ["east", "south", "west"]})
    return EventCounter(
        classifier,
        TOPICS,
        P,
        counts if counts is not None else DictTable(),
        seen if seen is not None else DictTable(),
        TZ,
        on_write=view.set if view else None,
    )


def referral(n: int, at: datetime = NOW - timedelta(minutes=10)) -> ReferralReceived:
    return ReferralReceived(
        version=1,
        event_id=f"ref-unit-{n:05d}",
        type="referral.received",
        occurred_at=at,
        force="lancashire",
        division="east",
        source="unit-test",
        referrer="nca",
        risk="high",
    )


def message(
    event: Any, offset: int, stamp: datetime = NOW
) -> tuple[str, int, int, bytes, bytes, datetime]:
    home = canonical_partition(event.event_id, P)
    topic = "ops.referrals" if event.type == "referral.received" else "ops.safeguarding"
    return (topic, home, offset, event.event_id.encode(), encode(event), stamp)


def test_counts_units_in_every_resolution() -> None:
    counter = make()
    child = SafeguardingAction(
        version=1,
        event_id="sg-unit-0001",
        type="safeguarding.action",
        occurred_at=NOW - timedelta(minutes=1),
        force="lancashire",
        division="west",
        source="unit-test",
        children=3,
    )
    out = counter.handle(*message(child, 0))
    assert out.result is Result.COUNTED
    resolutions = sorted(k.split("|")[3] for k in counter.counts if k.startswith("c|"))
    assert resolutions == ["d", "h", "m", "t"]
    assert all(
        count_fields(v)[:2] == [3, 1] for k, v in counter.counts.items() if k.startswith("c|")
    )


def test_replay_after_crash_changes_nothing() -> None:
    counter = make()
    msgs = [message(referral(i), 10 + i) for i in range(50)]
    for m in msgs:
        counter.handle(*m)
    snapshot = (dict(counter.counts), dict(counter.seen))
    for m in msgs[20:]:  # at-least-once: everything since the last commit comes again
        assert counter.handle(*m).result is Result.COUNTED
    assert (counter.counts, counter.seen) == snapshot


@settings(max_examples=200, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=200),
    replay_from=st.integers(min_value=0, max_value=39),
    batch=st.integers(min_value=1, max_value=12),
)
def test_kill_9_at_any_write_then_replay_is_exact(cut: int, replay_from: int, batch: int) -> None:
    """Writes stop at an arbitrary point (kill -9) of a batch's flush; replaying from any
    offset at or before the crashed batch (the last commit can be no later) heals."""

    class Crash(Exception):
        pass

    class Dying(DictTable):
        writes = 0

        def __setitem__(self, key: str, value: Any) -> None:
            Dying.writes += 1
            if Dying.writes > cut:
                raise Crash
            super().__setitem__(key, value)

    events = [referral(i % 30) for i in range(40)]  # ids 0..9 repeat: duplicates
    msgs = [message(e, 100 + i) for i, e in enumerate(events)]
    Dying.writes = 0
    counts, seen = Dying(), Dying()
    crashed_at = len(msgs)
    counter = make(counts, seen)
    for i in range(0, len(msgs), batch):
        try:
            counter.handle_batch(Message(*m) for m in msgs[i : i + batch])
        except Crash:
            crashed_at = i
            break
    Dying.writes = -(10**9)  # the restarted worker writes freely
    # the changelog holds what was written; Kafka replays from the last commit (<= crash)
    healed = make(counts, seen)
    for m in msgs[min(replay_from, crashed_at) :]:
        healed.handle(*m)
    reference = make()
    for m in msgs:
        reference.handle(*m)
    assert dict(counts) == dict(reference.counts)
    # the de-duplication state, as a restarted worker rebuilds it from the table
    assert dict(make(counts, seen).sightings()) == dict(reference.sightings())


def test_duplicate_counted_once_and_in_duplicates() -> None:
    counter = make()
    e = referral(1)
    assert counter.handle(*message(e, 5)).result is Result.COUNTED
    assert counter.handle(*message(e, 9)).result is Result.DUPLICATE
    assert counter.handle(*message(e, 9)).result is Result.DUPLICATE  # replayed duplicate
    total = next(v for k, v in counter.counts.items() if k.startswith("c|r|") and "|t|" in k)
    dup = next(v for k, v in counter.counts.items() if k.startswith("d|"))
    assert count_fields(total)[:2] == [1, 1]
    assert count_fields(dup)[:2] == [1, 1]


def test_wrong_partition_or_key_is_rerouted_not_counted() -> None:
    counter = make()
    e = referral(2)
    topic, home, _, key, value, stamp = message(e, 0)
    out = counter.handle(topic, (home + 1) % P, 0, key, value, stamp)
    assert (out.result, out.reroute_partition) == (Result.REROUTED, home)
    out = counter.handle(topic, home, 1, None, value, stamp)
    assert out.result is Result.REROUTED
    assert counter.counts == {}
    assert counter.seen == {}


def test_rejections_are_counted_by_reason_once() -> None:
    counter = make()
    for offset in (3, 3, 4):
        out = counter.handle("ops.referrals", 0, offset, None, b"{nope", NOW)
        assert out.result is Result.REJECTED
    assert count_fields(counter.counts["x|r|0|malformed"])[:2] == [2, 2]


def test_old_events_count_in_days_and_totals_only() -> None:
    counter = make()
    for n, age in enumerate((timedelta(hours=3), timedelta(days=31), timedelta(days=900))):
        counter.handle(*message(referral(n, NOW - age), n))
    res = sorted(k.split("|")[3] for k in counter.counts if k.startswith("c|"))
    # 3 h old: hour + day + total (no minute); 31 and 900 days: day + total
    assert res.count("m") == 0
    assert res.count("h") == 1
    assert res.count("d") == 3


def test_expire_removes_only_that_partitions_old_keys() -> None:
    view = CountsView()
    counter = make(view=view)
    events = [referral(i, NOW - timedelta(minutes=30)) for i in range(40)]
    for i, e in enumerate(events):
        counter.handle(*message(e, i))
    parts = {canonical_partition(e.event_id, P) for e in events}
    victim = sorted(parts)[0]
    later = NOW + timedelta(days=40)
    removed = counter.expire([victim], later, seen_days=30)
    assert removed > 0
    for key in counter.counts:
        p, res = int(key.split("|")[2]), key.split("|")[3]
        if p == victim:
            assert res in ("d", "t")
    assert all(not k.startswith(f"s|{victim}|") for k in counter.seen)
    assert all(s.partition != victim for _, s in counter.sightings())
    assert any(s.partition != victim for _, s in counter.sightings())


def test_expire_of_several_partitions_at_once_is_each_partition_in_turn() -> None:
    """One pass over the tables for several partitions deletes what one call per
    partition did, and nothing of the partitions not named."""
    events = [referral(i, NOW - timedelta(minutes=30 + i)) for i in range(60)]
    counters = [make(), make()]
    for counter in counters:
        for i, e in enumerate(events):
            counter.handle(*message(e, i))
    parts = sorted({canonical_partition(e.event_id, P) for e in events})
    named, spared = parts[:-1], parts[-1]
    later = NOW + timedelta(days=40)
    together = counters[0].expire(named, later, seen_days=30)
    one_by_one = sum(counters[1].expire([p], later, seen_days=30) for p in named)
    assert together == one_by_one > 0
    assert counters[0].counts == counters[1].counts
    assert counters[0].seen == counters[1].seen
    assert counters[0].first == counters[1].first
    kept = {k.split("|")[3] for k in counters[0].counts if k.split("|")[2] == str(spared)}
    assert {"m", "h"} <= kept  # the partition not named keeps its minute and hour keys


def test_expire_reads_seen_values_decoded_from_the_changelog() -> None:
    """After a recovery the seen values are lists (Faust decodes the JSON): expiry
    must delete their keys and forget their sightings as for the counter's bytes."""
    counter = make()
    for i in range(20):
        counter.handle(*message(referral(i), i))
    decoded = DictTable({k: seen_entries(v) for k, v in counter.seen.items()})
    restarted = make(seen=decoded)
    for p in range(P):
        restarted.expire([p], NOW + timedelta(days=40), seen_days=30)
    assert restarted.seen == {}
    assert restarted.first == {}


@pytest.mark.parametrize("occurred", ["2025-10-26T00:30:00+01:00", "2025-10-26T01:30:00+00:00"])
def test_day_bucket_uses_local_date_across_clock_change(occurred: str) -> None:
    counter = make()
    e = referral(7, datetime.fromisoformat(occurred))
    counter.handle(*message(e, 1, stamp=datetime(2025, 10, 27, tzinfo=UTC)))
    day = next(int(k.split("|")[4]) for k in counter.counts if "|d|" in k)
    assert datetime.fromordinal(day).date().isoformat() == "2025-10-26"


def test_first_sightings_of_two_topics_at_one_offset_survive_a_restart() -> None:
    """Regression (reliability scenario 4): offsets are per topic, so two batches whose
    first sightings share a partition and an offset must not share a ``seen`` key."""
    ref = referral(1)
    p = canonical_partition(ref.event_id, P)
    child = next(
        c
        for n in range(1000)
        if canonical_partition(
            (
                c := SafeguardingAction(
                    version=1,
                    event_id=f"sg-unit-{n:05d}",
                    type="safeguarding.action",
                    occurred_at=NOW - timedelta(minutes=10),
                    force="lancashire",
                    division="east",
                    source="unit-test",
                    children=1,
                )
            ).event_id,
            P,
        )
        == p
    )
    seen = DictTable()
    counter = make(seen=seen)
    assert counter.handle(*message(ref, 0)).result is Result.COUNTED
    assert counter.handle(*message(child, 0)).result is Result.COUNTED
    restarted = make(seen=seen)  # rebuilds its index from the seen table
    assert restarted.handle(*message(ref, 7)).result is Result.DUPLICATE
    assert restarted.handle(*message(child, 7)).result is Result.DUPLICATE


@given(
    code=st.sampled_from(["r", "s"]),
    partition=st.integers(min_value=0, max_value=P - 1),
    offset=st.integers(min_value=0, max_value=2**62),
)
def test_packed_sighting_round_trips(code: str, partition: int, offset: int) -> None:
    counter = make()
    counter.first[b"e"] = counter._pack(code, partition, offset)
    assert counter.sighting("e") == Sighting(code, partition, offset)
    assert counter.sighting("other") is None


def test_seen_values_are_the_changelog_json_and_rebuild_from_either_form() -> None:
    """The counter keeps its seen batches as the changelog record's JSON (a list of
    [event_id, code, offset]) compressed; a restarted counter rebuilds the same index
    from those bytes, from the lists Faust decodes, from the plain JSON, or a mix."""
    counter = make()
    events = [referral(i % 25) for i in range(60)]  # with duplicates
    batch = [Message(*message(e, 100 + i)) for i, e in enumerate(events)]
    for start in range(0, len(batch), 7):
        counter.handle_batch(batch[start : start + 7])
    assert counter.seen
    assert all(isinstance(v, bytes) for v in counter.seen.values())
    decoded = {k: seen_entries(v) for k, v in counter.seen.items()}
    for key, entries in decoded.items():
        assert all(isinstance(i, str) and c == "r" and isinstance(o, int) for i, c, o in entries)
        assert zlib.decompress(counter.seen[key]) == orjson.dumps(entries)
        assert seen_entries(orjson.dumps(entries)) == entries == seen_entries(entries)
    assert sum(len(v) for v in decoded.values()) == 25
    expected = dict(counter.sightings())
    assert len(expected) == 25
    keys = sorted(decoded)
    forms = (decoded, counter.seen, {k: orjson.dumps(v) for k, v in decoded.items()})
    mixed = {k: forms[n % 3][k] for n, k in enumerate(keys)}
    for seen in (dict(counter.seen), decoded, mixed):
        restarted = make(seen=DictTable(seen))
        assert dict(restarted.sightings()) == expected
        assert restarted.first == counter.first
        # a replay after the restart: first sightings are themselves, the rest duplicates
        before = dict(restarted.seen)
        results = [o.result for o in restarted.handle_batch(batch)]
        assert results == [Result.COUNTED] * 25 + [Result.DUPLICATE] * 35
        assert restarted.seen == before


@given(
    units=st.integers(min_value=-(2**70), max_value=2**70),
    events=st.integers(min_value=0, max_value=2**45),
    offset=st.integers(min_value=0, max_value=2**63 - 1),
)
def test_packed_count_reads_back_exactly(units: int, events: int, offset: int) -> None:
    packed = pack_count(units, events, offset)
    assert count_fields(packed) == [units, events, offset]
    assert isinstance(packed, int) == (events < 2**40 and offset < 2**40)


class Recording(DictTable):
    """A table that keeps the changelog record of every write, as FaustTable sends it."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, bytes | None] = {}

    def put(self, partition: int, key: str, value: Any | None, record: Any = None) -> None:
        super().put(partition, key, value, record)
        shown = value if record is None else record
        self.records[key] = None if value is None else orjson.dumps(shown)


def test_changelog_records_stay_json_lists_and_recovery_reads_them() -> None:
    """Counts are packed ints in memory; the changelog still holds ``[units, events,
    offset]`` and a worker recovered from it (lists, as Faust decodes them) counts on
    exactly as the one that wrote them, before and after :meth:`EventCounter.compact`."""
    counts = Recording()
    counter = make(counts)
    events = [referral(i % 25) for i in range(40)]  # repeats: duplicates
    msgs = [message(e, 100 + i) for i, e in enumerate(events)]
    for m in msgs[:30]:
        counter.handle(*m)
    for key, value in counts.items():
        assert isinstance(value, int)
        assert counts.records[key] == orjson.dumps(count_fields(value))
        assert orjson.loads(counts.records[key] or b"")[2] >= 100
    reference = make()
    for m in msgs:
        reference.handle(*m)
    for compact in (False, True):
        decoded = DictTable({k: orjson.loads(v or b"") for k, v in counts.records.items()})
        seen = DictTable({k: seen_entries(v) for k, v in counter.seen.items()})
        restarted = make(decoded, seen)
        if compact:
            assert restarted.compact() == len(decoded) + len(seen)
            assert dict(decoded) == dict(counts)
            assert all(isinstance(v, bytes) for v in seen.values())
        for m in msgs[20:]:  # replayed from an older commit, then new messages
            restarted.handle(*m)
        assert dict(count_lists(decoded.items())) == dict(count_lists(reference.counts.items()))


def test_seen_values_are_smaller_than_their_json() -> None:
    """The ``seen`` values kept for 30 days: compressed, and exactly their own size
    (orjson's result holds a 4 KiB buffer; docs/performance.md, "Round 3")."""
    import tracemalloc

    entries = [
        [f"sim:1:referral:{1794214800 + i * 60}:west:west-d{i % 4}:0", "r", i] for i in range(400)
    ]
    raw = orjson.dumps(entries)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [pack_seen(raw) for _ in range(50)]
        per_value = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert seen_entries(kept[0]) == entries
    assert per_value < len(raw) / 3  # ids of the simulator's shape compress about 5x


@given(st.integers(min_value=0, max_value=253_402_300_799_000))
def test_message_stamp_is_the_timestamp_as_a_utc_datetime(ms: int) -> None:
    expected = datetime.fromtimestamp(ms / 1000.0, UTC)
    assert message_stamp(ms) == expected
    assert message_stamp(ms) == expected  # the cached answer too
    assert message_stamp(ms).tzinfo is UTC
