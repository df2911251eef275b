"""streams/fetch_wait.py: the worker's consumer asks the broker to hold a fetch 100 ms at most,
and its thread notes each fetch for streams/fetch_positions.py.

A real Faust app with the worker's drain transport; its consumer thread builds aiokafka's
consumer as Faust does (never started here; tests/integration/test_fetch_wait.py starts
one against the real broker).
"""

from __future__ import annotations

import contextlib
from typing import Any

import faust
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from streams import drain, fetch_positions, fetch_wait
from tests.unit.fake_aiokafka import FakeAIOKafkaConsumer


async def _noop(records: list[object]) -> None:
    return None


def make_app() -> faust.App:
    app = faust.App("t", broker="kafka://127.0.0.1:1", store="memory://", loghandlers=[])
    source = app.topic("a", key_serializer="raw", value_serializer="raw")
    drain.install(app, source, _noop, 100)
    return app


async def test_the_worker_consumer_waits_at_most_100_ms_for_a_fetch() -> None:
    app = make_app()
    thread = app.consumer._thread
    assert isinstance(thread, fetch_wait.ConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)
    assert consumer._fetch_max_wait_ms == fetch_wait.FETCH_MAX_WAIT_MS == 100
    # Everything else stays as Faust builds it.
    assert consumer._max_poll_records == app.conf.broker_max_poll_records
    assert consumer._group_id == app.conf.id


async def test_faust_alone_would_wait_1500_ms() -> None:
    """What the override is for: if Faust's own value changes, revisit the module."""
    app = make_app()
    plain = faust.transport.drivers.aiokafka.AIOKafkaConsumerThread(
        app.consumer, loop=app.consumer.loop, beacon=app.consumer.beacon
    )
    assert plain._create_worker_consumer(app.transport)._fetch_max_wait_ms == 1500


class _Fetcher:
    """aiokafka's fetcher as Faust's ``_fetch_records`` calls it."""

    def __init__(self, kafka: FakeAIOKafkaConsumer, records: dict[TP, list[Any]]) -> None:
        self.kafka, self.records, self._closed = kafka, records, False
        self._subscriptions = self

    def fetch_context(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    async def fetched_records(self, partitions: Any, timeout: Any, max_records: Any) -> Any:  # noqa: ASYNC109
        self.kafka.drained(self.records)
        return self.records


async def test_the_thread_notes_each_fetch_and_gives_back_what_was_not_applied() -> None:
    """The wiring of streams/fetch_positions.py into the consumer's thread."""
    app = make_app()
    thread: Any = app.consumer._thread
    tp = TP("a", 0)
    kafka: Any = FakeAIOKafkaConsumer({tp: 0})
    kafka._closed = False
    kafka._fetcher = _Fetcher(
        kafka, {tp: [ConsumerRecord("a", 0, o, 0, 0, b"", b"", None, 0, 0, ()) for o in range(3)]}
    )
    assert [r.offset for r in (await thread._fetch_records(kafka, {tp}))[tp]] == [0, 1, 2]
    assert fetch_positions.of(app.consumer).pending() == {tp: 0}
    fetch_positions.of(app.consumer).applied(tp, 0)  # the main thread applied offset 0
    await thread._fetch_records(kafka, {tp})  # before fetching: back to offset 1
    assert kafka.sought == [(tp, 1)]
