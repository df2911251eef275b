"""streams/drain.py: source messages go to the handler in batches; Faust's bookkeeping holds.

A real Faust app and its real consumer (never started: the fetch itself is replaced by
a fake returning fixed records), so acks, read offsets, gaps and the committable
offset are Faust's own structures.
"""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams import drain, fetch_positions
from tests.unit.fake_aiokafka import FakeAIOKafkaConsumer

A0, A1, B0, OTHER = TP("a", 0), TP("a", 1), TP("b", 0), TP("changelog", 0)


class Exited(Exception):
    """Stands in for os._exit."""


def fake_exit(code: int) -> NoReturn:
    raise Exited(code)


def record(tp: TP, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 1_000, 0, b"k", b"v", None, 1, 1, ())


class Rig:
    """An app whose consumer fetches ``self.fetch`` and whose handler logs batches."""

    def __init__(self, batch_max: int = 100) -> None:
        self.app = faust.App("t", broker="kafka://127.0.0.1:1", store="memory://", loghandlers=[])
        source = self.app.topic("a", "b", key_serializer="raw", value_serializer="raw")
        self.batches: list[list[tuple[str, int, int]]] = []
        self.during: list[Any] = []  # what the handler saw of the consumer's state
        self.hook: Any = None  # awaited inside the handler
        self.on_fetch: Any = None  # called while fetching
        self.entered = asyncio.Event()  # the handler has started
        drain.install(self.app, source, self.handle, batch_max)
        transport = self.app.transport
        assert isinstance(transport, drain.DrainTransport)
        transport.drain = drain.Drain(frozenset({"a", "b"}), self.handle, batch_max, fake_exit)
        self.consumer: Any = self.app.consumer
        self.fetch: dict[TP, list[Any]] = {}
        self.commits = 0
        self.seeks_to_committed = 0
        self.consumer._getmany = self._getmany
        self.consumer.commit = self._commit
        self.consumer.perform_seek = self._perform_seek
        self.consumer.highwater = lambda tp: 100
        self.kafka = FakeAIOKafkaConsumer()

    async def start(self) -> None:
        await self.app.topics._update_indices()  # what the conductor's subscriber does
        self.app.flow_control.resume()
        self.consumer._set_active_tps({A0, A1, B0, OTHER})

    async def _getmany(self, active_partitions: Any, timeout: float) -> dict[TP, list[Any]]:  # noqa: ASYNC109
        if self.on_fetch is not None:
            self.on_fetch()
        # What the consumer's thread does: positions move past the records, noted.
        self.kafka.drained(self.fetch)
        self.outstanding.handed_out(self.fetch, self.kafka)
        return self.fetch

    @property
    def outstanding(self) -> fetch_positions.Outstanding:
        return fetch_positions.of(self.consumer)

    def given_back(self) -> dict[TP, int]:
        """What the next fetch seeks back to (records nobody applied)."""
        return self.outstanding.rewind(self.kafka)

    async def _commit(self, *args: Any, **kwargs: Any) -> bool:
        self.commits += 1
        return True

    async def _perform_seek(self) -> None:
        self.seeks_to_committed += 1

    async def handle(self, records: list[Any]) -> None:
        c = self.consumer
        self.during.append(
            (
                {tp: list(offs) for tp, offs in c._acked.items() if offs},
                len(c._unacked_messages),
                dict(c._read_offset),
            )
        )
        self.entered.set()
        if self.hook is not None:
            await self.hook()
        self.batches.append([(r.topic, r.partition, r.offset) for r in records])

    async def getmany(self) -> list[tuple[TP, int]]:
        """One pass of Faust's ``getmany``: what reaches the per-message path."""
        return [(tp, m.offset) async for tp, m in self.consumer.getmany(timeout=0)]


@pytest.fixture
async def rig() -> Rig:
    return Rig()  # built in the test's event loop: Faust's consumer takes the running loop


async def test_only_source_messages_are_diverted_in_partition_order(rig: Rig) -> None:
    await rig.start()
    rig.fetch = {
        A0: [record(A0, o) for o in range(3)],
        OTHER: [record(OTHER, 7), record(OTHER, 8)],
        B0: [record(B0, 5)],
    }
    per_message = await rig.getmany()
    assert per_message == [(OTHER, 7), (OTHER, 8)]  # Faust's own path, as before
    assert rig.batches == [[("a", 0, 0), ("a", 0, 1), ("a", 0, 2), ("b", 0, 5)]]
    assert rig.given_back() == {}  # all applied: nothing to read again


async def test_a_fetch_is_applied_in_chunks_of_at_most_batch_max() -> None:
    rig = Rig(batch_max=2)
    await rig.start()
    rig.fetch = {A0: [record(A0, o) for o in range(3)], A1: [record(A1, 0), record(A1, 1)]}
    await rig.getmany()
    assert rig.batches == [
        [("a", 0, 0), ("a", 0, 1)],
        [("a", 0, 2), ("a", 1, 0)],
        [("a", 1, 1)],
    ]


async def test_acks_come_after_the_handler_and_make_the_offsets_committable(rig: Rig) -> None:
    await rig.start()
    rig.fetch = {A0: [record(A0, o) for o in range(10, 13)]}
    await rig.getmany()
    acked, in_flight, read = rig.during[0]
    assert acked == {}  # nothing acknowledged while the handler ran
    assert in_flight == 1  # a rebalance's wait_empty would wait for it
    assert read[A0] == 12
    c = rig.consumer
    assert c._acked[A0] == [10, 11, 12]
    assert c._n_acked == 3
    assert not c._unacked_messages
    assert c._new_offset(A0) == 13  # what the next commit sends


async def test_a_suspended_flow_drops_the_batch_unacked_and_reads_it_again(rig: Rig) -> None:
    await rig.start()
    rig.on_fetch = rig.consumer.stop_flow  # a rebalance began during the fetch
    rig.fetch = {A0: [record(A0, 0)], OTHER: [record(OTHER, 1)]}
    assert await rig.getmany() == []  # nor does the other topic's message go on
    assert rig.batches == []
    assert not rig.consumer._acked.get(A0)
    assert rig.consumer._read_offset.get(A0) is None
    assert rig.seeks_to_committed == 1  # getmany seeks back to the committed offsets
    # A0 may never have been committed: its record is read again all the same (the
    # other topic's record was Faust's path's to drop).
    assert rig.given_back() == {A0: 0}


async def test_a_flow_stopped_during_a_chunk_drops_the_next_chunks() -> None:
    rig = Rig(batch_max=1)
    await rig.start()

    async def rebalance() -> None:
        rig.consumer.stop_flow()

    rig.hook = rebalance
    rig.fetch = {A0: [record(A0, 0), record(A0, 1), record(A0, 2)]}
    await rig.getmany()
    assert rig.batches == [[("a", 0, 0)]]  # the chunk under way finishes
    assert rig.consumer._acked[A0] == [0]
    assert rig.seeks_to_committed == 1
    assert rig.given_back() == {A0: 1}  # the chunks dropped are read again


async def test_a_new_consumer_generation_drops_the_rest_of_the_fetch() -> None:
    rig = Rig(batch_max=1)
    await rig.start()

    async def new_generation() -> None:
        rig.app.consumer_generation_id += 1

    rig.hook = new_generation
    rig.fetch = {A0: [record(A0, 0), record(A0, 1)]}
    await rig.getmany()
    assert rig.batches == [[("a", 0, 0)]]
    assert rig.consumer._acked[A0] == [0]
    assert rig.given_back() == {A0: 1}


async def test_paused_partitions_and_old_offsets_are_skipped_jumps_become_gaps(rig: Rig) -> None:
    await rig.start()
    c = rig.consumer
    c.pause_partitions({A1})
    c._read_offset[A0] = 5
    rig.fetch = {
        A0: [record(A0, o) for o in (4, 5, 6, 9)],
        A1: [record(A1, 0)],
    }
    await rig.getmany()
    assert rig.batches == [[("a", 0, 5), ("a", 0, 6), ("a", 0, 9)]]
    assert c._read_offset[A0] == 9
    # Faust's gap for a jump to 9 spans 7 to 9 (its interval [7, 10))
    assert sorted((i.begin, i.end) for i in c._gap[A0]) == [(7, 10)]
    assert c._new_offset(A0) == 10  # the commit passes the gap
    assert not c._acked.get(A1)
    assert rig.given_back() == {A1: 0}  # the paused partition's record, read again


async def test_a_seek_while_the_batch_is_handled_wins_over_its_read_offset(rig: Rig) -> None:
    await rig.start()

    async def no_seek(tp: TP, offset: int) -> None:
        return None

    rig.consumer._seek = no_seek

    async def read_again() -> None:
        await rig.consumer.seek(A0, 2)  # the offset guard reading a gap again

    rig.hook = read_again
    rig.fetch = {A0: [record(A0, o) for o in range(5, 8)]}
    await rig.getmany()
    assert rig.consumer._read_offset[A0] == 2  # the re-read's messages are not dropped
    rig.hook = None
    rig.fetch = {A0: [record(A0, o) for o in range(2, 5)]}
    await rig.getmany()
    assert rig.batches[-1] == [("a", 0, 2), ("a", 0, 3), ("a", 0, 4)]


async def test_commits_every_broker_commit_every_acks(rig: Rig) -> None:
    await rig.start()
    rig.consumer._commit_every = 3
    rig.fetch = {A0: [record(A0, 0), record(A0, 1)]}
    await rig.getmany()
    assert rig.commits == 0
    rig.fetch = {A0: [record(A0, 2)]}
    await rig.getmany()
    assert rig.commits == 1
    assert rig.consumer._n_acked == 0


async def test_wait_empty_waits_for_the_chunk_in_flight(rig: Rig) -> None:
    await rig.start()
    release = asyncio.Event()
    rig.hook = release.wait
    rig.fetch = {A0: [record(A0, 0)]}
    fetching = asyncio.ensure_future(rig.getmany())
    await rig.entered.wait()
    waiting = asyncio.ensure_future(rig.consumer.wait_empty())  # a rebalance or a stop
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done()
    release.set()
    await asyncio.wait_for(waiting, 5)
    await fetching
    assert rig.consumer._acked[A0] == [0]


async def test_a_cancelled_fetcher_finishes_and_acks_the_chunk_first(rig: Rig) -> None:
    await rig.start()
    release = asyncio.Event()
    rig.hook = release.wait
    rig.fetch = {A0: [record(A0, 0)], A1: [record(A1, 0)]}
    fetching = asyncio.ensure_future(rig.getmany())
    await rig.entered.wait()
    fetching.cancel()  # the worker stops
    for _ in range(5):
        await asyncio.sleep(0)  # the cancellation reaches the fetcher mid-batch
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await fetching
    assert rig.batches == [[("a", 0, 0), ("a", 1, 0)]]
    assert rig.consumer._acked[A0] == [0]


async def test_a_failing_batch_ends_the_process_unacked(rig: Rig) -> None:
    await rig.start()

    async def boom() -> None:
        raise RuntimeError("changelog refused")

    rig.hook = boom
    rig.fetch = {A0: [record(A0, 0)]}
    with pytest.raises(Exited):
        await rig.getmany()
    assert not rig.consumer._acked.get(A0)


def test_install_refuses_an_app_whose_consumer_exists() -> None:
    app = faust.App("t2", broker="kafka://127.0.0.1:1", store="memory://", loghandlers=[])
    app.consumer  # noqa: B018 - created
    with pytest.raises(RuntimeError, match="before the app's consumer"):
        drain.install(app, app.topic("a"), Rig().handle, 10)


async def test_records_all_below_the_read_offset_are_not_given_back(rig: Rig) -> None:
    await rig.start()
    rig.consumer._read_offset[A0] = 5
    rig.fetch = {A0: [record(A0, 3), record(A0, 4)], B0: [record(B0, 0)]}
    await rig.getmany()
    assert rig.batches == [[("b", 0, 0)]]  # A0's were delivered before
    assert rig.given_back() == {}
