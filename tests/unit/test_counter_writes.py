"""The counter's inlined per-event path writes exactly what the plain one did.

``ReferenceCounter`` keeps ``_handle`` and ``_flush`` as they were before the inlining
(``bucket_keys`` and ``_bump`` per key, ``count_fields`` per write); both counters get
the same generated batches (duplicates, replays, junk, rerouted keys, events around the
minute and hour horizons, offsets around the packed form's 40-bit limit) and must make
the same table writes (partition, key, value, changelog record, in order), the same
view writes and the same outcomes.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.classify import Classifier, Rejected
from services.contract.events import ReferralReceived, SafeguardingAction
from services.publisher import encode
from streams.count_store import CountStore
from streams.counter import (
    DictTable,
    EventCounter,
    Message,
    Outcome,
    Result,
    bucket_keys,
    canonical_partition,
    count_fields,
    pack_seen,
)
from streams.labels import join, label_values, units

TZ = ZoneInfo("Europe/London")
NOW = datetime(2025, 10, 26, 1, 30, tzinfo=UTC)  # the night the clocks go back
P = 4
TOPICS = {"ops.referrals": "r", "ops.safeguarding": "s"}


class ReferenceCounter(EventCounter):
    """The counter's per-event path and flush as they were before the inlining."""

    def _flush(self) -> None:
        try:
            for partition, entries in self._sightings.items():
                day = self._sighting_day[partition]
                first_code, first_offset = entries[0][1], entries[0][2]
                key = f"s|{partition}|{day}|{first_code}{first_offset}"
                raw = orjson.dumps(entries)
                self.seen.put(partition, key, pack_seen(raw), raw)
            for key, (partition, value, _) in self._counts.items():
                fields = count_fields(value)
                self.counts.put(partition, key, value, fields)
                self.on_write(key, fields)
        finally:
            self._sightings.clear()
            self._sighting_day.clear()
            self._counts.clear()

    def _handle(self, msg: Message, key_hash: int) -> Outcome:
        topic, partition, offset, key, value, stamp = msg
        code = self.topic_codes[topic]
        outcome = self.classifier.classify(topic, value, now=stamp)
        if isinstance(outcome, Rejected):
            self._bump(partition, f"x|{code}|{partition}|{outcome.reason.value}", 1, 1, offset)
            return Outcome(Result.REJECTED, rejection=outcome)
        event = outcome.event
        event_id = event.event_id
        raw_id = event_id.encode()
        home = (
            ((key_hash & 0x7FFFFFFF) % self.partitions)
            if key == raw_id
            else canonical_partition(event_id, self.partitions)
        )
        if home != partition or key != raw_id:
            return Outcome(Result.REROUTED, event.type, reroute_partition=home, event_id=event_id)
        first = self.first.get(raw_id)
        here = self._pack(code, partition, offset)
        if first is not None and first != here:
            self._bump(partition, f"d|{code}|{partition}", 1, 1, offset)
            return Outcome(Result.DUPLICATE, event.type, event_id=event_id)
        if first is None:
            self.first[raw_id] = here
            if partition not in self._sightings:
                self._sightings[partition] = []
                self._sighting_day[partition] = int(stamp.timestamp() // 86400)
            self._sightings[partition].append([event_id, code, offset])
        n = units(event)
        labels = join(label_values(event))
        occurred = event.occurred_at
        for bucket_key in bucket_keys(
            code, partition, labels, occurred, stamp, self.tz, self.dates
        ):
            self._bump(partition, bucket_key, n, 1, offset)
        return Outcome(Result.COUNTED, event.type, event_id=event_id, occurred_at=event.occurred_at)


class RecordingTable(DictTable):
    """A dict table that logs every write."""

    def __init__(self, log: list[Any], name: str) -> None:
        super().__init__()
        self.log, self.name = log, name

    def put(self, partition: int, key: str, value: Any | None, record: Any = None) -> None:
        self.log.append((self.name, partition, key, value, record))
        super().put(partition, key, value, record)


class RecordingStoreTable(RecordingTable):
    """The same, holding the counts in a CountStore as the worker does."""

    def __init__(self, log: list[Any], name: str) -> None:
        super().__init__(log, name)
        self.store = CountStore()

    def get(self, key: str, default: Any = None) -> Any:
        return self.store.get(key, default)

    def get_count(self, key: str, series: str, bucket: int) -> Any:
        return self.store.get_count(key, series, bucket)

    def put(self, partition: int, key: str, value: Any | None, record: Any = None) -> None:
        self.log.append((self.name, partition, key, value, record))
        if value is None:
            self.store.pop(key, None)
        else:
            self.store[key] = value

    def put_count(
        self, partition: int, key: str, series: str, bucket: int, value: Any, record: Any
    ) -> None:
        self.log.append((self.name, partition, key, value, record))
        self.store.set_count(key, series, bucket, value)

    def keep(self, key: str, value: Any) -> None:
        self.store[key] = value

    def items(self) -> Any:
        return self.store.items()


def _counter(
    cls: type[EventCounter],
    log: list[Any],
    table: type[RecordingTable] = RecordingTable,
    by_parts: bool = False,
) -> EventCounter:
    """A counter logging its writes; ``by_parts``: count keys reach the view by their parts
    (``on_count``, as in the worker), logged as the key they make."""
    classifier = Classifier.for_prefix("ops.", {"lancashire": ["east", "south", "west"]})
    return cls(
        classifier,
        TOPICS,
        P,
        table(log, "counts"),
        RecordingTable(log, "seen"),
        TZ,
        on_write=lambda key, value: log.append(("view", key, value)),
        on_count=(
            (lambda c, p, r, b, labels, v: log.append(("view", f"c|{c}|{p}|{r}|{b}|{labels}", v)))
            if by_parts
            else None
        ),
    )


AGES = st.one_of(
    st.sampled_from(
        [
            timedelta(hours=2) - timedelta(microseconds=1),
            timedelta(hours=2),
            timedelta(days=30) - timedelta(microseconds=1),
            timedelta(days=30),
            timedelta(minutes=-4),
        ]
    ),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)),
)


@st.composite
def messages(draw: st.DrawFn) -> list[Message]:
    out = []
    base_offset = draw(st.sampled_from([0, 2**40 - 30, 2**40 - 2, 2**40 + 5]))
    offsets: dict[tuple[str, int], int] = {}
    for _ in range(draw(st.integers(1, 40))):
        i = draw(st.integers(0, 25))  # few ids: duplicates
        age = draw(AGES)
        stamp = NOW + draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=3)))
        at = stamp - age
        event: Any
        if i % 2:
            event = SafeguardingAction(
                version=1,
                event_id=f"sg-unit-{i:05d}",
                type="safeguarding.action",
                occurred_at=at,
                force="lancashire",
                division=draw(st.sampled_from(["east", "south"])),
                source="unit-test",
                children=draw(st.integers(1, 100)),
            )
            topic = "ops.safeguarding"
        else:
            event = ReferralReceived(
                version=1,
                event_id=f"ref-unit-{i:05d}",
                type="referral.received",
                occurred_at=at,
                force="lancashire",
                division="west",
                source="unit-test",
                referrer="nca",
                risk=draw(st.sampled_from(["high", "low"])),
            )
            topic = "ops.referrals"
        partition = canonical_partition(event.event_id, P)
        key = event.event_id.encode()
        value = encode(event)
        what = draw(st.sampled_from(["event"] * 6 + ["junk", "reroute", "other-key"]))
        if what == "junk":
            value = draw(st.sampled_from([b"[1]", b"{", b'{"version":1}']))
        elif what == "reroute":
            partition = (partition + 1) % P
        elif what == "other-key":
            key = b"some-other-key"
        offset = offsets.get((topic, partition), base_offset)
        offsets[(topic, partition)] = offset + 1
        out.append(Message(topic, partition, offset, key, value, stamp))
    if draw(st.booleans()):  # a replay of a stretch of what came before
        start = draw(st.integers(0, len(out) - 1))
        out += out[start : start + draw(st.integers(1, 20))]
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(msgs=messages(), cuts=st.lists(st.integers(1, 60), max_size=4))
def test_inlined_counter_writes_what_the_reference_wrote(
    msgs: list[Message], cuts: list[int]
) -> None:
    logs: list[list[Any]] = [[], [], []]
    counters = [
        _counter(ReferenceCounter, logs[0]),
        _counter(EventCounter, logs[1]),
        _counter(EventCounter, logs[2], RecordingStoreTable, by_parts=True),  # as the worker
    ]
    outcomes: list[list[Outcome]] = [[], [], []]
    bounds = sorted({0, len(msgs), *(c for c in cuts if c < len(msgs))})
    for start, end in itertools.pairwise(bounds):
        for counter, out in zip(counters, outcomes, strict=True):
            out.extend(counter.handle_batch(msgs[start:end]))
    for i in (1, 2):
        assert logs[0] == logs[i]  # the same writes, values and records, in the same order
        assert [type(w[-2]) for w in logs[0]] == [type(w[-2]) for w in logs[i]]
        assert outcomes[0] == outcomes[i]
        assert dict(counters[0].sightings()) == dict(counters[i].sightings())
    assert dict(counters[0].counts.items()) == dict(counters[2].counts.items())


def test_the_generated_batches_reach_every_path() -> None:
    """The generator above makes counted, duplicate, rejected and rerouted messages,
    list-form counts (offsets past 40 bits) and replays that skip keys."""
    seen: set[Any] = set()

    @settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(messages())
    def run(msgs: list[Message]) -> None:
        log: list[Any] = []
        counter = _counter(EventCounter, log)
        seen.update(o.result for o in counter.handle_batch(msgs))
        seen.update(type(w[3]) for w in log if w[0] == "counts")

    run()
    assert seen >= {*Result, int, list}
