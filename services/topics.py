"""The contract topics: their names, and creating or checking them on the broker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from kafka import errors as kafka_errors
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from opsmetrics.settings import Settings
from services.contract.events import DEADLETTER_TOPIC, TOPIC_OF, EventType
from services.kafka_access import KafkaAuthenticationFailed as KafkaAuthenticationFailed
from services.kafka_access import KafkaUnavailable as KafkaUnavailable  # callers catch it here
from services.kafka_access import check_credentials

log = structlog.get_logger(__name__)

#: Dead letters are kept long enough to be replayed after a config fix.
DEADLETTER_RETENTION_MS = 90 * 24 * 3600 * 1000


#: Event topics keep every event (the source of truth for rebuilding counts) and are
#: stamped by the broker on append, so the stream's time-based decisions (the
#: ``future`` check, bucket horizons) are the same when a message is replayed.
EVENT_TOPIC_CONFIG = {"retention.ms": "-1", "message.timestamp.type": "LogAppendTime"}


def event_topics(settings: Settings) -> dict[str, EventType]:
    """Full topic name -> the event type it carries."""
    return {settings.topic(short): etype for etype, short in TOPIC_OF.items()}


def deadletter_topic(settings: Settings) -> str:
    """Full name of the dead-letter topic."""
    return settings.topic(DEADLETTER_TOPIC)


def admin_client(settings: Settings, timeout_s: float | None = None) -> KafkaAdminClient:
    """An admin client, or :class:`KafkaUnavailable` within ``timeout_s``.

    Refused SASL credentials raise :class:`KafkaAuthenticationFailed` at once.
    """
    check_credentials(settings)
    timeout_ms = int((timeout_s or settings.kafka_request_timeout_s) * 1000)
    try:
        return KafkaAdminClient(
            **settings.kafka_client_options(),
            client_id="opsmetrics-admin",
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"Kafka at {settings.kafka_bootstrap} is not reachable ({type(exc).__name__}). "
            "Start it with `make up` or `opsmetrics kafka start`, or set OPS_KAFKA_BOOTSTRAP."
        ) from exc


@dataclass(frozen=True)
class TopicState:
    """What `ensure_topics` found or did for one topic."""

    name: str
    partitions: int
    created: bool


def source_partitions(settings: Settings) -> int:
    """Create missing topics, then return the (common) partition count of the event topics.

    Raises ValueError when the event topics disagree: the stream counts an event on
    its key's home partition, which must be the same number on every topic.
    """
    states = ensure_topics(settings)
    counts = {s.partitions for s in states if s.name in event_topics(settings)}
    if len(counts) != 1:
        detail = ", ".join(f"{s.name}={s.partitions}" for s in states)
        raise ValueError(
            f"the event topics have different partition counts ({detail}); "
            "recreate them with the same count (OPS_TOPIC_PARTITIONS)"
        )
    return counts.pop()


def create_missing(
    admin: KafkaAdminClient,
    configs: Mapping[str, Mapping[str, str]],
    partitions: int,
    replication: int,
) -> tuple[list[str], dict[str, int]]:
    """Create the topics of ``configs`` (name -> topic config) that do not exist yet.

    Each gets ``partitions`` partitions; the call waits until every topic has a leader
    for each partition. Returns the names this call created and every topic's
    partition count. A topic that another process creates at the same moment (two
    services starting together) counts as existing, not as an error.
    """
    existing = set(admin.list_topics())
    missing = [name for name in configs if name not in existing]
    created: list[str] = []
    if missing:
        result = admin.create_topics(
            {
                name: {
                    "num_partitions": partitions,
                    "replication_factor": replication,
                    "configs": dict(configs[name]),
                }
                for name in missing
            },
            raise_errors=False,
        )
        for topic in result["topics"]:
            error = kafka_errors.for_code(topic["error_code"])
            if error is kafka_errors.NoError:
                created.append(topic["name"])
            elif error is not kafka_errors.TopicAlreadyExistsError:
                raise error(f"creating topic {topic['name']}: {topic.get('error_message')}")
        admin.wait_for_topics(list(configs))
    found = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(configs))}
    return created, found


def ensure_topics(settings: Settings) -> list[TopicState]:
    """Create the contract topics that are missing; report every topic's partitions.

    An existing topic with fewer partitions than configured is reported, never
    altered: adding partitions re-maps keys, which breaks de-duplication by key.
    """
    configs: dict[str, Mapping[str, str]] = dict.fromkeys(
        event_topics(settings), EVENT_TOPIC_CONFIG
    )
    configs[deadletter_topic(settings)] = {"retention.ms": str(DEADLETTER_RETENTION_MS)}
    admin = admin_client(settings)
    try:
        created, found = create_missing(
            admin, configs, settings.topic_partitions, settings.topic_replication
        )
    finally:
        admin.close()
    if created:
        log.info("topics_created", topics=created)
    return [TopicState(name, found.get(name, 0), name in created) for name in configs]
