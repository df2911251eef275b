"""The ingest API's link to Kafka: a lazily created publisher and a health probe.

The service starts whether or not Kafka is up. A background loop probes Kafka
(an admin call listing topics) every ``interval_s`` while it is up and every
``down_interval_s`` while it is not, and creates the :class:`Publisher` the first
time Kafka answers. While Kafka is down, publishing fails fast with
:class:`KafkaDown` (the API answers 503 with ``Retry-After``); a publish that
fails marks Kafka down and wakes the probe at once. Blocking kafka-python calls
run in worker threads, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio
import anyio.to_thread
import structlog
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from opsmetrics.settings import Settings
from services.kafka_access import KafkaAuthenticationFailed, check_credentials
from services.publisher import Delivery, PublishError
from services.topics import KafkaUnavailable, event_topics

log = structlog.get_logger(__name__)


class KafkaDown(Exception):
    """Kafka cannot take events now; nothing was reported accepted."""


class PublisherLike(Protocol):
    """What the API needs of :class:`services.publisher.Publisher`."""

    def publish_many(self, events: Sequence[Any]) -> list[Delivery]: ...

    def close(self, timeout_s: float = 10.0) -> None: ...


def probe_kafka(settings: Settings, timeout_s: float) -> str | None:
    """None if Kafka answers and the event topics exist, else what is wrong."""
    ms = max(1000, int(timeout_s * 1000))
    try:
        check_credentials(settings)
    except KafkaAuthenticationFailed as exc:
        return str(exc)
    try:
        admin = KafkaAdminClient(
            **settings.kafka_client_options(),
            client_id="opsmetrics-ingest-health",
            request_timeout_ms=ms,
            bootstrap_timeout_ms=ms,
            reconnect_backoff_max_ms=500,
        )
    except (KafkaError, OSError):
        return "Kafka is not reachable"
    try:
        topics = set(admin.list_topics())
    except (KafkaError, OSError):
        return "Kafka is not reachable"
    finally:
        admin.close()
    missing = sorted(t for t in event_topics(settings) if t not in topics)
    if missing:
        return f"event topics missing: {', '.join(missing)} (run `opsmetrics topics`)"
    return None


class KafkaLink:
    """Owns the publisher and the current view of Kafka's health."""

    def __init__(
        self,
        publisher_factory: Callable[[], PublisherLike],
        probe: Callable[[], str | None],
        *,
        interval_s: float = 5.0,
        down_interval_s: float = 1.0,
    ) -> None:
        self._factory = publisher_factory
        self._probe = probe
        self._interval_s = interval_s
        self._down_interval_s = down_interval_s
        self._publisher: PublisherLike | None = None
        self._wake: anyio.Event | None = None
        self.problem: str | None = "not checked yet"

    @property
    def up(self) -> bool:
        """Whether events can be published now."""
        return self.problem is None and self._publisher is not None

    def _set(self, problem: str | None) -> None:
        if problem != self.problem:
            if problem is None:
                log.info("kafka_up")
            else:
                log.warning("kafka_down", problem=problem)
        self.problem = problem

    async def check(self) -> None:
        """Probe Kafka once; create the publisher the first time it answers."""
        problem = await anyio.to_thread.run_sync(self._probe)
        if problem is None and self._publisher is None:
            try:
                self._publisher = await anyio.to_thread.run_sync(self._factory)
            except (KafkaUnavailable, KafkaError, OSError) as exc:
                problem = f"Kafka producer could not start ({type(exc).__name__})"
        self._set(problem)

    async def run(self) -> None:
        """Probe forever (cancel to stop)."""
        self._wake = anyio.Event()
        while True:
            try:
                await self.check()
            except Exception as exc:  # noqa: BLE001 - the probe loop must never die
                self._set(f"Kafka check failed ({type(exc).__name__})")
            with anyio.move_on_after(self._interval_s if self.up else self._down_interval_s):
                await self._wake.wait()
            self._wake = anyio.Event()

    async def publish(self, events: Sequence[Any]) -> list[Delivery]:
        """Publish and wait for Kafka's acknowledgement of every event, or raise KafkaDown."""
        publisher = self._publisher
        if publisher is None or self.problem is not None:
            raise KafkaDown(self.problem or "Kafka is not connected")
        try:
            return await anyio.to_thread.run_sync(publisher.publish_many, events)
        except (PublishError, KafkaUnavailable, KafkaError, OSError) as exc:
            self._set(f"publishing failed ({type(exc).__name__})")
            if self._wake is not None:
                self._wake.set()
            raise KafkaDown(str(self.problem)) from exc

    async def close(self) -> None:
        """Flush and close the publisher (in a thread)."""
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await anyio.to_thread.run_sync(publisher.close)
