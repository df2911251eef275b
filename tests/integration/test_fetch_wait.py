"""streams/fetch_wait.py against the real broker: the started consumer's fetcher holds 100 ms.

aiokafka copies the wait into its fetcher when the consumer starts; this checks that the
value set on the consumer Faust builds is the one its fetches carry.
"""

from __future__ import annotations

import faust

from opsmetrics.settings import Settings
from streams import drain, fetch_wait


async def _noop(records: list[object]) -> None:
    return None


async def test_the_started_worker_consumer_fetches_with_a_100_ms_wait(
    kafka_settings: Settings,
) -> None:
    app = faust.App(
        f"{kafka_settings.topic_prefix}fetch-wait",
        broker=f"kafka://{kafka_settings.kafka_bootstrap}",
        store="memory://",
        loghandlers=[],
    )
    drain.install(app, app.topic("a", key_serializer="raw", value_serializer="raw"), _noop, 10)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    await consumer.start()
    try:
        assert consumer._fetcher._fetch_max_wait_ms == fetch_wait.FETCH_MAX_WAIT_MS
    finally:
        await consumer.stop()
