"""streams/changelog_restore.py: a fetch's changelog records restored as Faust's loop would.

A real Faust app with a real table, its real recovery service and consumer (never
started: the fetch is replaced by a fake returning fixed records, as in test_drain.py),
so the table's store, the recovery's offsets, buffers and signals are Faust's own.
Restoring through a real broker (kill -9, two workers, rebalances) is in tests/stream
and tests/reliability.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Set
from typing import Any

import faust
import orjson
import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition
from faust.exceptions import ValueDecodeError
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import count_store, drain, fetch_positions
from tests.unit.fake_aiokafka import FakeAIOKafkaConsumer

LOG = "t-counts-changelog"
C0, C1, SOURCE = TP(LOG, 0), TP(LOG, 1), TP("a", 0)
COUNT_KEY = "c|r|0|h|493000|x,y"  # held by the count store (streams/count_store.py)


def record(tp: TP, offset: int, key: str, value: Any) -> ConsumerRecord[bytes, bytes]:
    raw = None if value is None else orjson.dumps(value)
    return ConsumerRecord(
        tp.topic, tp.partition, offset, 1_000, 0, orjson.dumps(key), raw, None, 1, 1, ()
    )


class Rig:
    """An app with one table whose changelog partitions the consumer fetches."""

    def __init__(self) -> None:
        self.app = faust.App("t", broker="kafka://127.0.0.1:1", store="memory://", loghandlers=[])
        self.table: Any = self.app.Table("counts", partitions=2)
        count_store.install(self.table)  # as the worker's counts table
        source = self.app.topic("a", key_serializer="raw", value_serializer="raw")
        self.handled: list[int] = []
        drain.install(self.app, source, self.handle, 100)
        self.consumer: Any = self.app.consumer
        tables: Any = self.app.tables
        self.recovery: Any = tables.recovery
        self.fetch: dict[TP, list[Any]] = {}
        self.consumer._getmany = self._getmany
        self.consumer.highwater = lambda tp: 100
        self.kafka = FakeAIOKafkaConsumer()
        self.on_fetch: Any = None  # called in the consumer's thread after the drain

    async def start(
        self, active: Set[TP] = frozenset({C0, C1}), standby: Set[TP] = frozenset()
    ) -> None:
        conductor: Any = self.app.topics
        await conductor._update_indices()  # the conductor's subscriber
        # The changelog's channel, as the table manager's _update_channels registers it
        # (indexed directly: _update_indices would declare the topic on a broker).
        tables: Any = self.app.tables
        self.channel = self.table.changelog_topic.clone_using_queue(tables.changelog_queue)
        conductor._topic_name_index[LOG].add(self.channel)
        self.app.flow_control.resume()
        self.consumer._set_active_tps({*active, *standby, SOURCE})
        for tp in active:
            self.recovery.add_active(self.table, tp)
            self.recovery.active_offsets[tp] = -1  # _build_offsets: from the beginning
        for tp in standby:
            self.recovery.add_standby(self.table, tp)
            self.recovery.standby_offsets[tp] = -1
        self.recovery._set_recovery_started()

    def highwaters(self, **last: int) -> None:
        """The last offset of each partition (what _build_highwaters records)."""
        for name, offset in last.items():
            tp = {"c0": C0, "c1": C1}[name]
            target = (
                self.recovery.active_highwaters
                if tp in self.recovery.active_tps
                else self.recovery.standby_highwaters
            )
            target[tp] = offset

    def restored(self) -> list[str]:
        """Keys in the table or in its recovery buffer (applied at the next flush)."""
        buffered = [e.key for e in self.recovery.buffers[self.table]]
        return sorted([*self.table.data, *buffered])

    async def _getmany(self, active_partitions: Any, timeout: float) -> dict[TP, list[Any]]:  # noqa: ASYNC109
        # What the consumer's thread does: positions move past the records, noted.
        self.kafka.drained(self.fetch)
        fetch_positions.of(self.consumer).handed_out(self.fetch, self.kafka)
        if self.on_fetch is not None:
            self.on_fetch()
        return self.fetch

    def given_back(self) -> dict[TP, int]:
        """What the next fetch seeks back to (records nobody applied)."""
        return fetch_positions.of(self.consumer).rewind(self.kafka)

    async def handle(self, records: list[Any]) -> None:
        self.handled.extend(r.offset for r in records)

    async def getmany(self) -> list[tuple[TP, int]]:
        """One pass of Faust's ``getmany``: what reaches the per-message path."""
        return [(tp, m.offset) async for tp, m in self.consumer.getmany(timeout=0)]


@pytest.fixture
async def rig() -> Rig:
    return Rig()  # built in the test's event loop


async def test_records_are_applied_to_the_table_and_never_reach_faust_s_path(rig: Rig) -> None:
    await rig.start()
    rig.highwaters(c0=3, c1=0)
    rig.fetch = {
        C0: [
            record(C0, 0, COUNT_KEY, [1, 1, 0]),
            record(C0, 1, "k2", [2, 1, 1]),
            record(C0, 2, COUNT_KEY, [3, 2, 2]),
            record(C0, 3, "k2", None),
        ],
        C1: [record(C1, 0, "k3", [[1, "x", 2]])],
        SOURCE: [],
    }
    assert await rig.getmany() == []
    assert dict(rig.table.data.items()) == {COUNT_KEY: [3, 2, 2], "k3": [[1, "x", 2]]}
    assert rig.recovery.active_offsets[C0] == 3
    assert rig.recovery.active_offsets[C1] == 0
    assert rig.consumer._read_offset[C0] == 3
    assert rig.table.data._key_partition == {COUNT_KEY: 0, "k3": 1}  # the memory store's


async def test_recovery_ends_when_every_active_partition_reaches_its_highwater(rig: Rig) -> None:
    await rig.start()
    rig.highwaters(c0=2, c1=1)
    rig.fetch = {C0: [record(C0, o, f"k{o}", [o, 1, o]) for o in range(3)]}
    await rig.getmany()
    assert rig.recovery.in_recovery  # C1 still has records to read
    assert not rig.recovery.signal_recovery_end.is_set()
    rig.fetch = {C1: [record(C1, 0, "j0", [1, 1, 0]), record(C1, 1, "j1", [1, 1, 1])]}
    await rig.getmany()
    assert not rig.recovery.in_recovery
    assert rig.recovery.signal_recovery_end.is_set()
    assert not any(rig.recovery.buffers[rig.table])  # flushed before the end
    assert len(rig.table.data) == 5


async def test_the_table_gets_a_batch_every_recovery_buffer_size_records(rig: Rig) -> None:
    rig.table.recovery_buffer_size = 2
    await rig.start()
    rig.highwaters(c0=10, c1=0)
    rig.fetch = {C0: [record(C0, o, f"k{o}", [o, 1, o]) for o in range(5)]}
    await rig.getmany()
    assert sorted(rig.table.data) == ["k0", "k1", "k2", "k3"]
    assert [e.key for e in rig.recovery.buffers[rig.table]] == ["k4"]


async def test_records_already_applied_or_below_the_read_offset_are_skipped(rig: Rig) -> None:
    await rig.start()
    rig.highwaters(c0=10, c1=0)
    rig.recovery.active_offsets[C0] = 4  # applied up to 4 before
    rig.consumer._read_offset[C1] = 5  # a seek: read from 5
    rig.fetch = {
        C0: [record(C0, o, f"k{o}", [o, 1, o]) for o in range(3, 7)],
        C1: [record(C1, o, f"j{o}", [o, 1, o]) for o in range(3, 7)],
    }
    await rig.getmany()
    assert rig.restored() == ["j5", "j6", "k5", "k6"]
    assert rig.recovery.active_offsets[C0] == 6
    assert rig.recovery.active_offsets[C1] == 6


async def test_a_suspended_flow_applies_nothing(rig: Rig) -> None:
    await rig.start()
    rig.highwaters(c0=10, c1=0)
    rig.fetch = {C0: [record(C0, 0, "k0", [1, 1, 0])]}
    rig.consumer.suspend_flow.set()  # a rebalance began
    assert await rig.getmany() == []
    assert len(rig.table.data) == 0
    assert rig.recovery.active_offsets[C0] == -1
    assert rig.consumer._read_offset.get(C0) is None
    # Recovery's seek may have come before this fetch returned: read them again.
    assert rig.given_back() == {C0: 0}


async def test_a_new_generation_while_the_source_batch_ran_applies_nothing(rig: Rig) -> None:
    await rig.start()
    rig.highwaters(c0=10, c1=0)

    async def rebalanced(records: list[Any]) -> None:
        rig.handled.extend(r.offset for r in records)
        rig.app.consumer_generation_id += 1

    transport: Any = rig.app.transport
    transport.drain = drain.Drain(transport.drain.topics, rebalanced, 100)
    rig.fetch = {SOURCE: [record(SOURCE, 7, "s", 1)], C0: [record(C0, 0, "k0", [1, 1, 0])]}
    assert await rig.getmany() == []
    assert rig.handled == [7]
    assert len(rig.table.data) == 0  # as getmany drops the rest of a fetch
    assert rig.recovery.active_offsets[C0] == -1


async def test_a_paused_partition_s_records_are_skipped(rig: Rig) -> None:
    await rig.start()
    rig.highwaters(c0=10, c1=10)
    rig.consumer._set_active_tps({C0, SOURCE})  # C1 paused
    rig.fetch = {C0: [record(C0, 0, "k0", [1, 1, 0])], C1: [record(C1, 0, "j0", [1, 1, 0])]}
    await rig.getmany()
    assert rig.restored() == ["k0"]
    assert rig.recovery.active_offsets[C1] == -1
    assert rig.given_back() == {C1: 0}  # the paused partition's record, read again


async def test_standby_records_update_standby_offsets_and_mark_standbys_ready(rig: Rig) -> None:
    await rig.start(active={C0}, standby={C1})
    rig.recovery._set_recovery_ended()
    rig.highwaters(c0=-1, c1=1)
    rig.fetch = {C1: [record(C1, 0, "j0", [1, 1, 0])]}
    await rig.getmany()
    assert rig.recovery.standby_offsets[C1] == 0
    assert not rig.app.tables.standbys_ready  # one record left
    rig.fetch = {C1: [record(C1, 1, "j1", [1, 1, 1])]}
    await rig.getmany()
    assert rig.recovery.standby_offsets[C1] == 1
    assert rig.app.tables.standbys_ready
    assert [e.key for e in rig.recovery.buffers[rig.table]] == ["j0", "j1"]  # standby buffer


async def test_partitions_recovery_does_not_track_go_through_faust_s_path(rig: Rig) -> None:
    await rig.start(active={C0})
    rig.highwaters(c0=10)
    rig.fetch = {C0: [record(C0, 0, "k0", [1, 1, 0])], C1: [record(C1, 0, "j0", [1, 1, 0])]}
    rig.consumer._set_active_tps({C0, C1, SOURCE})
    assert await rig.getmany() == [(C1, 0)]
    assert rig.restored() == ["k0"]


async def test_a_table_with_a_changelog_callback_goes_through_faust_s_path(rig: Rig) -> None:
    async def callback(event: Any) -> None:
        pass

    rig.table._on_changelog_event = callback
    await rig.start()
    rig.highwaters(c0=10, c1=0)
    rig.fetch = {C0: [record(C0, 0, "k0", [1, 1, 0])]}
    assert await rig.getmany() == [(C0, 0)]
    assert len(rig.table.data) == 0


# --- the same fetches through Faust's own path -------------------------------------------

KEYS = ("a", "b", COUNT_KEY)
# Any JSON value (a tombstone as None); dicts, some of them with Faust's "__faust" key
# (which the registry's Model._maybe_reconstruct looks for), strings, lists of them.
SCALARS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=5), st.booleans())
VALUES = st.one_of(
    st.none(),
    st.fixed_dictionaries({"__faust": st.fixed_dictionaries({"ns": SCALARS})}),
    st.lists(st.integers(0, 9), min_size=3, max_size=3),
    st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.sampled_from(["ns", "__faust", "x"]), inner, max_size=2),
        ),
        max_leaves=5,
    ),
)


async def faust_pass(rig: Rig) -> None:
    """One fetch through Faust's path: ``getmany``, the drain loop's read-offset check,
    the conductor's decode and queue put, then Faust's own recovery loop until idle."""
    transport: Any = rig.app.transport
    transport.drain = None  # nothing diverted: every record reaches getmany
    tables: Any = rig.app.tables
    queue = tables.changelog_queue
    read = rig.consumer._read_offset
    async for tp, message in rig.consumer.getmany(timeout=0):
        last = read.get(tp)
        if last is None or message.offset >= last:
            queue.put_nowait(await rig.channel.decode(message, propagate=True))
            read[tp] = message.offset
    # A Service.task, called with its service.
    loop = asyncio.create_task(rig.recovery._slurp_changelogs(rig.recovery))
    for _ in range(10_000):  # the loop takes an event per step
        if queue.empty():
            break
        await asyncio.sleep(0)
    assert queue.empty()
    for _ in range(10):  # the last event's checks
        await asyncio.sleep(0)
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop


def state(rig: Rig) -> dict[str, Any]:
    """What a restore leaves behind, to compare the two paths."""
    r = rig.recovery
    return {
        "table": sorted(rig.table.data.items()),
        "partitions": sorted(rig.table.data._key_partition.items()),
        "buffer": [(e.key, e.value, e.message.offset) for e in r.buffers[rig.table]],
        "active_offsets": dict(r.active_offsets),
        "standby_offsets": dict(r.standby_offsets),
        "in_recovery": r.in_recovery,
        "standbys_ready": rig.app.tables.standbys_ready,
        "read": {tp: o for tp, o in rig.consumer._read_offset.items() if o is not None},
    }


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    roles = {tp: draw(st.sampled_from(["active", "standby"])) for tp in (C0, C1)}
    fetches = []
    for _ in range(draw(st.integers(1, 3))):
        fetch = {}
        for tp in draw(st.lists(st.sampled_from([C0, C1]), unique=True)):
            offsets = sorted(draw(st.sets(st.integers(0, 12), max_size=6)))
            fetch[tp] = [(o, draw(st.sampled_from(KEYS)), draw(VALUES)) for o in offsets]
        fetches.append(fetch)
    return {
        "roles": roles,
        "applied": {tp: draw(st.integers(-1, 5)) for tp in (C0, C1)},
        "read": {tp: draw(st.one_of(st.none(), st.integers(0, 6))) for tp in (C0, C1)},
        "highwater": {tp: draw(st.integers(-1, 14)) for tp in (C0, C1)},
        "paused": draw(st.sets(st.sampled_from([C0, C1]), max_size=1)),
        "buffer": (draw(st.integers(1, 4)), draw(st.integers(1, 4))),
        "recovering": draw(st.booleans()),
        "fetches": fetches,
    }


async def run_scenario(scenario: dict[str, Any], faust_path: bool) -> list[dict[str, Any]]:
    rig = Rig()
    rig.table.recovery_buffer_size, rig.table.standby_buffer_size = scenario["buffer"]
    roles = scenario["roles"]
    await rig.start(
        active=frozenset(tp for tp, role in roles.items() if role == "active"),
        standby=frozenset(tp for tp, role in roles.items() if role == "standby"),
    )
    rig.consumer._set_active_tps({C0, C1, SOURCE} - scenario["paused"])
    for tp in (C0, C1):
        offsets = (
            rig.recovery.active_offsets if roles[tp] == "active" else rig.recovery.standby_offsets
        )
        offsets[tp] = scenario["applied"][tp]
        highwaters = (
            rig.recovery.active_highwaters
            if roles[tp] == "active"
            else rig.recovery.standby_highwaters
        )
        highwaters[tp] = scenario["highwater"][tp]
        if scenario["read"][tp] is not None:
            rig.consumer._read_offset[tp] = scenario["read"][tp]
    if not scenario["recovering"]:
        rig.recovery._set_recovery_ended()
    states = []
    for fetch in scenario["fetches"]:
        rig.fetch = {
            tp: [record(tp, o, key, value) for o, key, value in recs] for tp, recs in fetch.items()
        }
        if faust_path:
            await faust_pass(rig)
        else:
            assert await rig.getmany() == []
        states.append(state(rig))
    return states


@settings(max_examples=int(os.environ.get("RESTORE_EXAMPLES", "300")), deadline=None)
@given(scenarios())
def test_the_same_fetches_leave_the_same_state_as_faust_s_own_path(
    scenario: dict[str, Any],
) -> None:
    assert outcome(scenario, faust_path=False) == outcome(scenario, faust_path=True)


def outcome(scenario: dict[str, Any], faust_path: bool) -> Any:
    """The states after each fetch, or the error that stopped them (e.g. a value
    naming an unknown model: Faust's ValueDecodeError either way)."""
    try:
        return asyncio.run(run_scenario(scenario, faust_path))
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        return type(exc).__name__, str(exc)


async def test_a_record_that_cannot_be_decoded_fails_even_when_already_applied(
    rig: Rig,
) -> None:
    await rig.start()
    rig.highwaters(c0=5, c1=0)
    rig.recovery.active_offsets[C0] = 3  # offset 2 was applied before: recovery skips it
    bad = {"__faust": {"ns": 0}}  # the conductor's decode fails first (as hypothesis found)
    rig.fetch = {C0: [record(C0, 2, "k", bad)]}
    with pytest.raises(ValueDecodeError):
        await rig.getmany()


def test_faust_s_path_fails_on_the_same_already_applied_record() -> None:
    scenario = {
        "roles": {C0: "active", C1: "active"},
        "applied": {C0: 3, C1: -1},
        "read": {C0: None, C1: None},
        "highwater": {C0: 5, C1: -1},
        "paused": set(),
        "buffer": (1000, 1000),
        "recovering": True,
        "fetches": [{C0: [(2, "k", {"__faust": {"ns": 0}})]}],
    }
    ours = outcome(scenario, faust_path=False)
    assert ours == outcome(scenario, faust_path=True)
    assert ours[0] == "ValueDecodeError"


async def test_a_value_naming_an_unknown_model_fails_as_in_faust(rig: Rig) -> None:
    await rig.start()
    rig.highwaters(c0=0, c1=0)
    rig.fetch = {C0: [record(C0, 0, "k", {"__faust": {"ns": "no_such_model"}})]}
    with pytest.raises(ValueDecodeError, match="no_such_model"):
        await rig.getmany()


async def test_records_fetched_before_a_seek_are_left_to_the_seek(rig: Rig) -> None:
    """A fetch that returned a standby's records, then recovery sought the partition to 0
    for a new generation before the records were handled: applying them now would mark
    the partition restored to 26 and set its read offset past the records the seek reads
    again (docs/reliability.md)."""
    await rig.start()
    rig.highwaters(c0=26, c1=0)
    rig.on_fetch = lambda: rig.kafka.seek(TopicPartition(LOG, 0), 0)  # recovery's seek
    rig.fetch = {
        C0: [record(C0, o, f"k{o}", [1, 1, o]) for o in (24, 25, 26)],
        C1: [record(C1, 0, "j0", [1, 1, 0])],
    }
    await rig.getmany()
    assert rig.restored() == ["j0"]  # C1 was not sought: applied
    assert rig.recovery.active_offsets[C0] == -1
    assert rig.consumer._read_offset.get(C0) is None
    assert C0 not in rig.recovery._active_events_received_at
    assert rig.given_back() == {}  # the seek decides what C0 reads next
    rig.kafka.sought.clear()
    rig.fetch = {C0: [record(C0, o, f"k{o}", [1, 1, o]) for o in range(27)]}
    rig.on_fetch = None
    await rig.getmany()  # what the seek reads: all of it, applied
    assert rig.recovery.active_offsets[C0] == 26
    assert len(rig.restored()) == 28


async def test_applied_records_are_not_given_back(rig: Rig) -> None:
    await rig.start()
    rig.highwaters(c0=10, c1=0)
    rig.consumer._read_offset[C1] = 3
    rig.fetch = {C0: [record(C0, 0, "k0", [1, 1, 0])], C1: [record(C1, 2, "j2", [1, 1, 2])]}
    await rig.getmany()
    assert rig.restored() == ["k0"]  # C1's record was below its read offset
    assert rig.given_back() == {}
