"""Reading the dead-letter topic and replaying dead letters onto their source topics.

A dead letter (written by the stream, streams/app.py) keeps the rejected message's
original key and bytes; headers say where it came from and why it was rejected
(``source_topic``, ``source_partition``, ``source_offset``, ``reason``, ``field``,
``detail``). Once the cause is fixed (say a division added to the forces file and
the workers restarted), :func:`replay` sends the chosen dead letters back to their
source topics, unchanged, with the same key (so a copy lands on the partition of its
first sighting) and a ``replay_of`` header naming the dead letter.

Replaying twice counts nothing twice, for two independent reasons:

* a ledger topic (``<prefix>deadletter-replayed``, compacted) records every dead
  letter replayed, by the source position it names, after Kafka confirmed the
  copies; a later replay skips them, so nothing is sent again;
* should a replay die between the copies and the ledger write, the next one sends
  them again and the stream counts each ``event_id`` once (de-duplication, 30 days
  at least).

A dead letter the current configuration would still reject is not sent (it would
only come back as a new dead letter) and not recorded: it stays replayable.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from opsmetrics.settings import Settings
from services.contract.classify import Classifier, Rejected
from services.contract.events import RejectReason
from services.kafka_access import KafkaUnavailable, check_credentials
from services.topics import admin_client, create_missing, deadletter_topic, event_topics

log = structlog.get_logger(__name__)

LEDGER_SUFFIX: Final = "deadletter-replayed"
REPLAY_HEADER: Final = "replay_of"
#: Reading a topic to its end stops after this long without progress.
STALL_S: Final = 30.0


class ReplayError(Exception):
    """The replay could not finish; what it reports was done stays done."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of the dead-letter topic."""

    partition: int  # in the dead-letter topic
    offset: int
    timestamp: datetime  # when the stream dead-lettered it
    key: bytes | None
    value: bytes | None
    source_topic: str
    source_partition: str
    source_offset: str
    reason: str
    field: str

    @property
    def source(self) -> tuple[str, str, str]:
        """The rejected message's position: one message, however often dead-lettered."""
        return (self.source_topic, self.source_partition, self.source_offset)

    @property
    def ledger_key(self) -> str:
        """Its key in the ledger: the source position ``<topic>:<partition>:<offset>``."""
        return ":".join(self.source)


@dataclass
class Summary:
    """Counts by (reason, source topic) of what a listing or a replay found and did."""

    found: Counter[tuple[str, str]] = field(default_factory=Counter)
    replayed: Counter[tuple[str, str]] = field(default_factory=Counter)
    already: Counter[tuple[str, str]] = field(default_factory=Counter)
    still_rejected: Counter[tuple[str, str]] = field(default_factory=Counter)

    def rows(self) -> list[tuple[str, str, int, int, int, int]]:
        """(reason, topic, found, replayed now, replayed before, still rejected), sorted."""
        return [
            (r, t, n, self.replayed[(r, t)], self.already[(r, t)], self.still_rejected[(r, t)])
            for (r, t), n in sorted(self.found.items())
        ]


def ledger_topic(settings: Settings) -> str:
    """Full name of the replay ledger topic."""
    return settings.topic(LEDGER_SUFFIX)


def _header(headers: list[tuple[str, bytes]] | None, name: str) -> str:
    for key, value in headers or []:
        if key == name:
            return value.decode("utf-8", errors="replace")
    return ""


def _read(settings: Settings, topic: str) -> Iterator[Any]:
    """Every record of ``topic`` up to its end offsets at the start (no consumer group)."""
    check_credentials(settings)
    timeout_ms = int(settings.kafka_request_timeout_s * 1000)
    try:
        consumer = KafkaConsumer(
            **settings.kafka_client_options(),
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=max(timeout_ms, 30_000),
        )
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"Kafka at {settings.kafka_bootstrap} is not reachable ({type(exc).__name__})"
        ) from exc
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps)
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        progress = time.monotonic()
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() - progress > STALL_S:
                raise ReplayError(f"could not read {topic} to its end in {STALL_S:.0f} s")
            for batch in consumer.poll(timeout_ms=500).values():
                for record in batch:
                    tp = TopicPartition(record.topic, record.partition)
                    if record.offset < ends[tp]:
                        progress = time.monotonic()
                        yield record
    finally:
        consumer.close()


def dead_letters(settings: Settings) -> Iterator[DeadLetter]:
    """Every rejected message once, in offset order within each dead-letter partition.

    The stream dead-letters at least once: a worker that crashed before committing
    its offsets reads a rejected message again and dead-letters it again. Copies name
    the same source position; only the first is returned.
    """
    seen: set[tuple[str, str, str]] = set()
    for r in _read(settings, deadletter_topic(settings)):
        letter = DeadLetter(
            partition=r.partition,
            offset=r.offset,
            timestamp=datetime.fromtimestamp(r.timestamp / 1000, UTC),
            key=r.key,
            value=r.value,
            source_topic=_header(r.headers, "source_topic"),
            source_partition=_header(r.headers, "source_partition"),
            source_offset=_header(r.headers, "source_offset"),
            reason=_header(r.headers, "reason"),
            field=_header(r.headers, "field"),
        )
        if letter.source in seen:
            continue
        seen.add(letter.source)
        yield letter


def replayed_keys(settings: Settings) -> set[str]:
    """Ledger keys of the dead letters already replayed."""
    return {r.key.decode() for r in _read(settings, ledger_topic(settings)) if r.key is not None}


def _ensure_ledger(settings: Settings) -> None:
    admin = admin_client(settings)
    try:
        create_missing(
            admin,
            {ledger_topic(settings): {"cleanup.policy": "compact"}},
            1,
            settings.topic_replication,
        )
    finally:
        admin.close()


def select(
    letters: Iterator[DeadLetter],
    reason: RejectReason,
    source_topic: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[DeadLetter]:
    """The dead letters of ``reason`` (and source topic, and time range [since, until))."""
    for d in letters:
        if d.reason != reason.value:
            continue
        if source_topic is not None and d.source_topic != source_topic:
            continue
        if since is not None and d.timestamp < since:
            continue
        if until is not None and d.timestamp >= until:
            continue
        yield d


def summarise(settings: Settings) -> Summary:
    """Every dead letter counted by reason and source topic, and how many were replayed."""
    done = replayed_keys(settings)
    summary = Summary()
    for d in dead_letters(settings):
        summary.found[(d.reason, d.source_topic)] += 1
        if d.ledger_key in done:
            summary.already[(d.reason, d.source_topic)] += 1
    return summary


def replay(
    settings: Settings,
    reason: RejectReason,
    *,
    source_topic: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    dry_run: bool = False,
) -> Summary:
    """Send the chosen dead letters back to their source topics, each at most once.

    With ``dry_run`` nothing is sent or recorded: the summary says what would be.
    """
    topics = event_topics(settings)
    if source_topic is not None and source_topic not in topics:
        raise ValueError(f"{source_topic!r} is not an event topic ({', '.join(sorted(topics))})")
    classifier = Classifier.for_prefix(
        settings.topic_prefix,
        {slug: force.divisions for slug, force in settings.forces.items()},
    )
    done = replayed_keys(settings)
    summary = Summary()
    to_send: list[DeadLetter] = []
    chosen = select(dead_letters(settings), reason, source_topic, since, until)
    for d in chosen:
        where = (d.reason, d.source_topic)
        summary.found[where] += 1
        if d.ledger_key in done:
            summary.already[where] += 1
        elif d.source_topic not in topics or d.value is None:
            summary.still_rejected[where] += 1  # not from an event topic of this prefix
        elif isinstance(classifier.classify(d.source_topic, d.value), Rejected):
            summary.still_rejected[where] += 1
        else:
            to_send.append(d)
            summary.replayed[where] += 1
    if dry_run or not to_send:
        return summary
    _ensure_ledger(settings)
    _send(settings, to_send)
    log.info(
        "deadletters_replayed",
        reason=reason.value,
        replayed=len(to_send),
        already=sum(summary.already.values()),
        still_rejected=sum(summary.still_rejected.values()),
    )
    return summary


def _send(settings: Settings, letters: list[DeadLetter]) -> None:
    """Publish the copies, then (only once Kafka confirmed them all) the ledger entries."""
    timeout_ms = int(settings.kafka_request_timeout_s * 1000)
    check_credentials(settings)
    try:
        producer = KafkaProducer(
            **settings.kafka_client_options(),
            client_id="opsmetrics-deadletter-replay",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=timeout_ms,
            max_block_ms=timeout_ms,
        )
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"Kafka at {settings.kafka_bootstrap} is not reachable ({type(exc).__name__})"
        ) from exc
    dlq = deadletter_topic(settings)
    wait_s = settings.kafka_request_timeout_s * 2
    try:
        copies = [
            producer.send(
                d.source_topic,
                key=d.key,
                value=d.value,
                headers=[(REPLAY_HEADER, f"{dlq}:{d.partition}:{d.offset}".encode())],
            )
            for d in letters
        ]
        producer.flush(timeout=wait_s)
        for future in copies:
            future.get(timeout=wait_s)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        entries = [
            producer.send(
                ledger_topic(settings),
                key=d.ledger_key.encode(),
                value=orjson.dumps({"replayed_at": now, "reason": d.reason, "to": d.source_topic}),
            )
            for d in letters
        ]
        producer.flush(timeout=wait_s)
        for future in entries:
            future.get(timeout=wait_s)
    except KafkaError as exc:
        raise ReplayError(
            f"Kafka did not confirm the replay ({type(exc).__name__}); run it again: "
            "copies already sent are counted once"
        ) from exc
    finally:
        producer.close(timeout=10)
