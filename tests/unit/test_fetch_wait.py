"""streams/fetch_wait.py: the worker's consumer asks the broker to hold a fetch 100 ms at most.

A real Faust app with the worker's drain transport; its consumer thread builds aiokafka's
consumer as Faust does (never started here; tests/integration/test_fetch_wait.py starts
one against the real broker).
"""

from __future__ import annotations

import faust

from streams import drain, fetch_wait


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
