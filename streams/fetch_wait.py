"""How long the broker may hold the worker's fetch: 100 ms, not Faust's 1.5 s.

aiokafka keeps one fetch in flight per broker, and leaves out of it the partitions
whose fetched records are still waiting to be consumed (once they have waited its
``prefetch_backoff``, 0.1 s). When a batch takes longer than that to count (the first
batches after a start, a commit, a large scrape), the next fetch names only partitions
with nothing new, and the broker holds it until ``fetch_max_wait_ms`` has passed;
the events arriving meanwhile on the busy partitions wait for it. Faust fixes that
wait at 1,500 ms (``faust/transport/drivers/aiokafka.py``), so live events waited up
to 1.6 s (the latency bench's stalls; docs/performance.md, change 20). At 100 ms an
idle worker sends ten small fetches a second per broker instead of one every 1.5 s.

The same thread class notes each fetch's records until the main thread has applied
them, and seeks back to the ones it never applied before the next fetch
(:mod:`streams.fetch_positions`).
"""

from __future__ import annotations

from typing import Any, Final

from faust.transport.drivers import aiokafka as driver

from streams.fetch_positions import Outstanding, log_rewound

FETCH_MAX_WAIT_MS: Final = 100


class ConsumerThread(driver.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, its consumer's fetch wait :data:`FETCH_MAX_WAIT_MS`;
    records it fetched and nobody applied are read again (:mod:`streams.fetch_positions`)."""

    outstanding: Outstanding

    def __post_init__(self) -> None:
        super().__post_init__()
        self.outstanding = Outstanding()

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,  # noqa: ASYNC109 - Faust's signature
        max_records: int | None = None,
    ) -> Any:
        log_rewound(self.outstanding.rewind(consumer))
        records = await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )
        self.outstanding.handed_out(records, consumer)  # no await since getmany returned
        return records

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when start() creates its fetcher; there is no setter.
        if not isinstance(getattr(consumer, "_fetch_max_wait_ms", None), int):
            raise RuntimeError(
                "aiokafka's consumer has no _fetch_max_wait_ms: see streams/fetch_wait.py"
            )
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer
