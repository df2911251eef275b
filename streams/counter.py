"""Exactly-once counting on top of at-least-once delivery.

Every message from a source partition is turned into a few table writes. Each
table value is ``[units, events, last_offset]``: the offset of the last source
message applied to it. A key always names its source topic and partition, so
after a crash, when Faust replays the messages since the last committed offset,
a write whose key already holds that offset (or a later one) is skipped. The
de-duplication entry (``event_id -> [topic, partition, offset, day]``) records the
first sighting, so a replay of that same message is recognised as itself, not as
a duplicate. No instant of a ``kill -9`` can make the two disagree.

Key layout (``|``-separated; slugs and enumerations never contain ``|`` or ``,``):

=====================================  ===========================================
``c|<type>|<p>|m|<minute>|<labels>``   units in one UTC minute (kept 2 hours)
``c|<type>|<p>|h|<hour>|<labels>``     units in one UTC hour (kept 30 days)
``c|<type>|<p>|d|<day>|<labels>``      units on one local date (kept for ever)
``c|<type>|<p>|t|0|<labels>``          all-time total (kept for ever)
``d|<type>|<p>``                       duplicates seen
``x|<type>|<p>|<reason>``              rejections, by reason
=====================================  ===========================================

Decisions use the message's timestamp (the broker's LogAppendTime on the contract
topics), never the wall clock, so a replay makes exactly the same writes.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from kafka.partitioner.default import murmur2

from services.contract.classify import Accepted, Classifier, Rejected
from streams.labels import join, label_values, units

MINUTE_HORIZON: Final = timedelta(hours=2)
HOUR_HORIZON: Final = timedelta(days=30)

Value = list[int]  # [units, events, last_offset]


class Result(StrEnum):
    """What happened to one message."""

    COUNTED = "counted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    REROUTED = "rerouted"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one message, and what the caller must send on."""

    result: Result
    type: str | None = None  # the event type, when the message held a valid event
    rejection: Rejected | None = None
    reroute_partition: int | None = None
    event_id: str | None = None
    occurred_at: datetime | None = None


def canonical_partition(event_id: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner picks for this key."""
    return (int(murmur2(event_id.encode())) & 0x7FFFFFFF) % partitions


def bucket_keys(
    code: str, partition: int, labels: str, occurred: datetime, stamp: datetime, tz: ZoneInfo
) -> list[str]:
    """The count keys one event is written to (finer buckets only within their horizon)."""
    ts = occurred.timestamp()
    prefix = f"c|{code}|{partition}|"
    keys = [
        f"{prefix}t|0|{labels}",
        f"{prefix}d|{occurred.astimezone(tz).date().toordinal()}|{labels}",
    ]
    age = stamp - occurred
    if age < HOUR_HORIZON:
        keys.append(f"{prefix}h|{int(ts // 3600)}|{labels}")
        if age < MINUTE_HORIZON:
            keys.append(f"{prefix}m|{int(ts // 60)}|{labels}")
    return keys


class EventCounter:
    """Applies classified messages to the counts and de-duplication tables."""

    def __init__(
        self,
        classifier: Classifier,
        topic_codes: dict[str, str],
        partitions: int,
        counts: MutableMapping[str, Any],
        seen: MutableMapping[str, Any],
        tz: ZoneInfo,
        on_write: Callable[[str, Value], None] | None = None,
    ) -> None:
        self.classifier = classifier
        self.topic_codes = topic_codes
        self.partitions = partitions
        self.counts = counts
        self.seen = seen
        self.tz = tz
        self.on_write = on_write or (lambda key, value: None)

    def _bump(self, key: str, add_units: int, add_events: int, offset: int) -> None:
        current = self.counts.get(key)
        if current is not None and current[2] >= offset:
            return  # this source message was already applied to this key
        value = (
            [current[0] + add_units, current[1] + add_events, offset]
            if current is not None
            else [add_units, add_events, offset]
        )
        self.counts[key] = value
        self.on_write(key, value)

    def handle(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        stamp: datetime,
    ) -> Outcome:
        """Classify one message and apply it; ``stamp`` is the message's timestamp."""
        code = self.topic_codes[topic]
        outcome = self.classifier.classify(topic, value, now=stamp)
        if isinstance(outcome, Rejected):
            self._bump(f"x|{code}|{partition}|{outcome.reason.value}", 1, 1, offset)
            return Outcome(Result.REJECTED, rejection=outcome)
        assert isinstance(outcome, Accepted)
        event = outcome.event
        event_id = event.event_id
        home = canonical_partition(event_id, self.partitions)
        if home != partition or key != event_id.encode():
            # Counted only on its key's home partition, so duplicates always meet.
            return Outcome(Result.REROUTED, event.type, reroute_partition=home, event_id=event_id)
        first = self.seen.get(event_id)
        if first is not None and (first[0], first[1], first[2]) != (code, partition, offset):
            self._bump(f"d|{code}|{partition}", 1, 1, offset)
            return Outcome(Result.DUPLICATE, event.type, event_id=event_id)
        if first is None:
            self.seen[event_id] = [code, partition, offset, int(stamp.timestamp() // 86400)]
        n = units(event)
        labels = join(label_values(event))
        for bucket_key in bucket_keys(code, partition, labels, event.occurred_at, stamp, self.tz):
            self._bump(bucket_key, n, 1, offset)
        return Outcome(Result.COUNTED, event.type, event_id=event_id, occurred_at=event.occurred_at)

    def expire(self, partition: int, now: datetime, seen_days: int) -> int:
        """Delete minute, hour and de-duplication entries of ``partition`` past retention.

        Returns the number of keys deleted. Only keys of ``partition`` are touched,
        so the caller may run it while processing a message of that partition.
        """
        minute_cut = int((now - MINUTE_HORIZON).timestamp() // 60) - 1
        hour_cut = int((now - HOUR_HORIZON).timestamp() // 3600) - 1
        day_cut = int(now.timestamp() // 86400) - seen_days
        tag = f"|{partition}|"
        doomed = []
        for key in list(self.counts.keys()):
            if not key.startswith("c|") or tag not in key[:12]:
                continue
            _, _, p, res, bucket, _ = key.split("|", 5)
            if int(p) != partition:
                continue
            if (res == "m" and int(bucket) < minute_cut) or (res == "h" and int(bucket) < hour_cut):
                doomed.append(key)
        for key in doomed:
            del self.counts[key]
        old_ids = [
            eid for eid, v in list(self.seen.items()) if v[1] == partition and v[3] < day_cut
        ]
        for eid in old_ids:
            del self.seen[eid]
        return len(doomed) + len(old_ids)
