"""Publishing contract events to Kafka with delivery confirmation.

The :class:`Publisher` uses kafka-python with ``acks=all``, idempotence and
retries; the message key is the ``event_id`` (so duplicates share a partition).
Every event is checked with the contract's classifier before it is sent: our own
tools never publish anything the stream would reject.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from opsmetrics.settings import Settings
from services.contract.classify import Accepted, Classifier, Rejected
from services.contract.events import TOPIC_OF, EventType
from services.kafka_access import KafkaUnavailable, check_credentials

log = structlog.get_logger(__name__)

AnyEvent = Any  # one of the contract models (see services.contract.events.Event)


class PublishError(Exception):
    """Kafka did not confirm delivery in time."""


class InvalidEvent(ValueError):
    """The event breaks the contract; it was not sent."""

    def __init__(self, rejection: Rejected) -> None:
        self.rejection = rejection
        where = f" ({rejection.field})" if rejection.field else ""
        super().__init__(f"{rejection.reason}{where}: {rejection.detail}")


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where Kafka stored one event."""

    event_id: str
    topic: str
    partition: int
    offset: int


def encode(event: AnyEvent) -> bytes:
    """The wire bytes of an event (compact UTF-8 JSON)."""
    return orjson.dumps(event.to_wire())


class Publisher:
    """Sends events and waits for Kafka's acknowledgement of each batch."""

    def __init__(self, settings: Settings, *, client_id: str = "opsmetrics-publisher") -> None:
        self._settings = settings
        self._classifier = Classifier.for_prefix(
            settings.topic_prefix,
            {force: f.divisions for force, f in settings.forces.items()},
        )
        timeout_ms = int(settings.kafka_request_timeout_s * 1000)
        check_credentials(settings)  # refused credentials: a clear error at once
        try:
            self._producer = KafkaProducer(
                **settings.kafka_client_options(),
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                retries=2**31 - 1,
                max_in_flight_requests_per_connection=5,
                linger_ms=5,
                request_timeout_ms=timeout_ms,
                delivery_timeout_ms=max(2 * timeout_ms, 30_000),
                max_block_ms=timeout_ms,
                bootstrap_timeout_ms=timeout_ms,
            )
        except KafkaError as exc:
            raise KafkaUnavailable(
                f"Kafka at {settings.kafka_bootstrap} is not reachable "
                f"({type(exc).__name__}). Start it with `make up` or set OPS_KAFKA_BOOTSTRAP."
            ) from exc

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def check(self, event: AnyEvent) -> str:
        """Classify an event as the stream will; return its topic or raise InvalidEvent."""
        topic = self._settings.topic(TOPIC_OF[EventType(event.type)])
        outcome = self._classifier.classify(topic, encode(event))
        if isinstance(outcome, Rejected):
            raise InvalidEvent(outcome)
        assert isinstance(outcome, Accepted)
        return topic

    def publish(self, event: AnyEvent) -> Delivery:
        """Send one event and wait for Kafka to confirm it."""
        return self.publish_many([event])[0]

    def publish_many(self, events: Iterable[AnyEvent]) -> list[Delivery]:
        """Send events (checked first: nothing is sent if one is invalid) and confirm all."""
        batch = [(self.check(event), event) for event in events]
        futures = [
            (
                event.event_id,
                self._producer.send(topic, key=event.event_id.encode(), value=encode(event)),
            )
            for topic, event in batch
        ]
        return self._confirm(futures)

    def send_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Delivery:
        """Send bytes unchecked (tests and tools only) and confirm."""
        future = self._producer.send(topic, key=key, value=value, headers=headers)
        return self._confirm([((key or b"").decode(errors="replace"), future)])[0]

    def _confirm(self, futures: list[tuple[str, Any]]) -> list[Delivery]:
        timeout = self._settings.kafka_request_timeout_s * 2
        deliveries = []
        try:
            self._producer.flush(timeout=timeout)
            for event_id, future in futures:
                meta = future.get(timeout=timeout)
                deliveries.append(Delivery(event_id, meta.topic, meta.partition, meta.offset))
        except KafkaError as exc:
            raise PublishError(
                f"Kafka at {self._settings.kafka_bootstrap} did not confirm delivery "
                f"({type(exc).__name__}); nothing was lost on our side: send again"
            ) from exc
        return deliveries

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush and close the producer; if the flush times out, close it anyway and raise.

        kafka-python's ``close`` raises on a flush timeout and leaves the producer open
        (its sender thread and an unflushed buffer live on until garbage collection), so
        what is left is aborted first: those sends fail, as their futures report.
        """
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaTimeoutError:
            log.warning("publisher_closed_unflushed", timeout_s=timeout_s)
            self._producer._sender.force_close()  # private: no public way to abort
            self._producer.close(timeout=0)
            raise
        self._producer.close(timeout=timeout_s)
