"""Exactly-once counting on top of at-least-once delivery.

Every message from a source partition is turned into a few table writes. Each
table value is ``[units, events, last_offset]``: the offset of the last source
message applied to it. A key always names its source topic and partition, so
after a crash, when Faust replays the messages since the last committed offset,
a write whose key already holds that offset (or a later one) is skipped. The
de-duplication state records each event's first sighting (topic, partition,
offset), so a replay of that same message is recognised as itself, not as a
duplicate. No instant of a ``kill -9`` can make the two disagree.

Messages are applied in batches; each touched key is written once per batch.
First sightings are written to the ``seen`` table as one value per partition per
batch (``s|<p>|<day>|<first type><first offset>`` -> ``[[event_id, type, offset], ...]``), and
an in-memory index (event id -> first sighting) is rebuilt from that table after
every recovery.

Memory (benchmarks/memory.py): the counter's own ``seen`` writes keep that value as
its serialized JSON compressed (:func:`pack_seen`; the changelog record is the JSON),
while values Faust decoded from the changelog are lists; :func:`seen_entries` reads
every form. The index
holds each sighting packed into one int (:meth:`EventCounter.sighting` unpacks it).
Counts are held as one int too (:func:`pack_count`); their changelog records and
what the view is given stay the list ``[units, events, last_offset]``
(:func:`count_fields` reads either form), and :meth:`EventCounter.compact` packs
the lists Faust decodes on recovery.

Key layout (``|``-separated; slugs and enumerations never contain ``|`` or ``,``):

=====================================  ===========================================
``c|<type>|<p>|m|<minute>|<labels>``   units in one UTC minute (kept 2 hours)
``c|<type>|<p>|h|<hour>|<labels>``     units in one UTC hour (kept 30 days)
``c|<type>|<p>|d|<day>|<labels>``      units on one local date (kept for ever)
``c|<type>|<p>|t|0|<labels>``          all-time total (kept for ever)
``d|<type>|<p>``                       duplicates seen
``x|<type>|<p>|<reason>``              rejections, by reason
``o|<type>|<p>``                       next source offset to apply (streams/offsets.py)
=====================================  ===========================================

Decisions use the message's timestamp (the broker's LogAppendTime on the contract
topics), never the wall clock, so a replay makes exactly the same writes.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, NamedTuple, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from services.contract.classify import Accepted, Classifier, Rejected
from streams.labels import join, label_values, units

MINUTE_HORIZON: Final = timedelta(hours=2)
HOUR_HORIZON: Final = timedelta(days=30)

Value = list[int]  # [units, events, last_offset]: a count's JSON form (changelog, view)
# A count key's parts: (type code, resolution, bucket, labels, series), the series being
# the key without its bucket (``c|<code>|<p>|<res>|<labels>``).
CountParts = tuple[str, str, int, str, str]
# (type code, partition, resolution, bucket, labels, value): a count key's write, by parts.
CountWrite = Callable[[str, int, str, int, str, Value], None]


class TableLike(Protocol):
    """What the counter needs of a table: read a key, write or delete it in a partition."""

    def get(self, key: str) -> Any:
        """The value of ``key``, or None."""

    def get_count(self, key: str, series: str, bucket: int) -> Any:
        """``get(key)`` for the count key ``c|<code>|<p>|<res>|<bucket>|<labels>``, given
        also as its ``series`` (``c|<code>|<p>|<res>|<labels>``) and ``bucket``."""

    def put(self, partition: int, key: str, value: Any | None, record: Any = None) -> None:
        """Set ``key`` (its changelog partition is ``partition``); None deletes.

        ``record``, when given, is what the changelog holds for ``value`` (which is then a
        compact in-memory form of it).
        """

    def put_count(
        self, partition: int, key: str, series: str, bucket: int, value: Any, record: Any
    ) -> None:
        """``put(partition, key, value, record)`` for the count key ``key``, given also as
        its ``series`` and ``bucket`` (as for :meth:`get_count`)."""

    def keep(self, key: str, value: Any) -> None:
        """Replace the in-memory value of ``key`` by an equivalent form (no changelog record)."""

    def items(self) -> Iterable[tuple[str, Any]]:
        """Every key and value held in memory."""


class DictTable(dict[str, Any]):
    """A plain dict as a table (unit tests, and the reference implementation)."""

    def get_count(self, key: str, series: str, bucket: int) -> Any:
        """The value of ``key``, or None (the parts are not needed here)."""
        return self.get(key)

    def put(self, partition: int, key: str, value: Any | None, record: Any = None) -> None:
        """Set or delete ``key``."""
        if value is None:
            self.pop(key, None)
        else:
            self[key] = value

    def put_count(
        self, partition: int, key: str, series: str, bucket: int, value: Any, record: Any
    ) -> None:
        """:meth:`put` (the parts are not needed here)."""
        self.put(partition, key, value, record)

    def keep(self, key: str, value: Any) -> None:
        """Replace the value of ``key``."""
        self[key] = value


class Message(NamedTuple):
    """The parts of a Kafka message the counter uses."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    stamp: datetime  # the message timestamp (LogAppendTime on the contract topics)


@functools.lru_cache(maxsize=1024)
def message_stamp(ms: int) -> datetime:
    """A Kafka message timestamp (ms since the epoch) as a UTC datetime.

    Cached: the broker gives every record of a produce batch the same LogAppendTime, so a
    fetch holds runs of equal timestamps.
    """
    return datetime.fromtimestamp(ms / 1000.0, UTC)


class Sighting(NamedTuple):
    """Where an event was first seen."""

    code: str  # the type code of its topic
    partition: int
    offset: int


def pack_seen(raw: bytes) -> bytes:
    """The in-memory form of a ``seen`` value: its JSON (``raw``), zlib-compressed.

    The table keeps 30 days of event ids; compressed (level 1, about 1 µs an event)
    they take a fifth to a half of their JSON (docs/performance.md, change 13), and
    ``seen`` values are read only after a recovery and when they expire. The changelog
    record stays the JSON.
    """
    return zlib.compress(raw, 1)


def seen_entries(value: Any) -> list[list[Any]]:
    """The ``[event_id, code, offset]`` entries of a ``seen`` value, any form.

    The counter's own writes hold the compressed JSON (:func:`pack_seen`); values Faust
    decoded from the changelog (recovery, standby) hold the lists themselves, and the
    plain JSON is read too.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        raw = value if bytes(value[:1]) == b"[" else zlib.decompress(value)
        entries: list[list[Any]] = orjson.loads(raw)
        return entries
    return value or []


# A count held in memory as one int: units << 80 | events << 40 | last offset. The
# changelog and the view still see the list ``[units, events, last_offset]``; a count
# with a field out of range (never in practice) stays a list, and so do the lists Faust
# decodes from the changelog until the counter packs them (:meth:`EventCounter.compact`).
_FIELD_BITS: Final = 40
_FIELD_MASK: Final = (1 << _FIELD_BITS) - 1
_UNITS_SHIFT: Final = 2 * _FIELD_BITS


def pack_count(units: int, events: int, offset: int) -> int | Value:
    """A count's in-memory form: one int when events and offset fit 40 bits, else the list."""
    if 0 <= events <= _FIELD_MASK and 0 <= offset <= _FIELD_MASK:
        return (units << _UNITS_SHIFT) | (events << _FIELD_BITS) | offset
    return [units, events, offset]


def count_fields(value: Any) -> Value:
    """``[units, events, last_offset]`` of a count in either form (packed int or list)."""
    if isinstance(value, int):
        return [value >> _UNITS_SHIFT, (value >> _FIELD_BITS) & _FIELD_MASK, value & _FIELD_MASK]
    return [value[0], value[1], value[2]]


def count_lists(items: Iterable[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    """The counts table's items with packed counts as their lists (e.g. for the view)."""
    for key, value in items:
        yield key, (count_fields(value) if isinstance(value, int) else value)


class Result(StrEnum):
    """What happened to one message."""

    COUNTED = "counted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    REROUTED = "rerouted"


@dataclass(slots=True)
class Outcome:
    """The result of one message, and what the caller must send on (read it, do not change it).

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, three
    times the cost of this one per message (docs/performance.md, change 21).
    """

    result: Result
    type: str | None = None  # the event type, when the message held a valid event
    rejection: Rejected | None = None
    reroute_partition: int | None = None
    event_id: str | None = None
    occurred_at: datetime | None = None


# A packed sighting: offset << 24 | partition << 8 | type code id.
_CODE_BITS: Final = 8
_CODE_MASK: Final = (1 << _CODE_BITS) - 1
_PARTITION_MASK: Final = 0xFFFF
_OFFSET_SHIFT: Final = _CODE_BITS + 16

_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF


def murmur2_fast(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` (as kafka-python's ``murmur2``, about 1.5x faster).

    Reads the 32-bit little-endian words with one ``struct.unpack`` instead of
    byte by byte; tests/unit/test_fast_parse.py checks it against kafka-python's.
    """
    length = len(data)
    h = 0x9747B28C ^ length
    body = length & ~3
    for k in struct.unpack(f"<{body >> 2}I", data[:body]):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra:
        if extra >= 3:
            h ^= data[body + 2] << 16
        if extra >= 2:
            h ^= data[body + 1] << 8
        h = ((h ^ data[body]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def canonical_partition(event_id: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner picks for this key."""
    return (murmur2_fast(event_id.encode()) & 0x7FFFFFFF) % partitions


_NM: Final = np.uint32(_M)
_S13, _S15, _S24 = np.uint32(13), np.uint32(15), np.uint32(24)


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """:func:`murmur2_fast` of every key, computed for all keys of one length at once.

    numpy's uint32 arithmetic wraps modulo 2**32 as the masks above do; a batch's
    event ids have a handful of lengths, so this is a few dozen array operations
    instead of a Python loop per key (tests/unit/test_fast_parse.py checks it).
    """
    out = [0] * len(keys)
    by_length: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(i)
    for length, where in by_length.items():
        rows = np.frombuffer(b"".join([keys[i] for i in where]), dtype=np.uint8)
        rows = rows.reshape(len(where), length)
        h = np.full(len(where), 0x9747B28C ^ length, dtype=np.uint32)
        body = length & ~3
        if body:
            words = np.ascontiguousarray(rows[:, :body]).view("<u4")
            for column in range(body >> 2):
                k = words[:, column] * _NM
                k = (k ^ (k >> _S24)) * _NM
                h = (h * _NM) ^ k
        extra = length & 3
        if extra:
            if extra >= 3:
                h ^= rows[:, body + 2].astype(np.uint32) << 16
            if extra >= 2:
                h ^= rows[:, body + 1].astype(np.uint32) << 8
            h = (h ^ rows[:, body].astype(np.uint32)) * _NM
        h = (h ^ (h >> _S13)) * _NM
        h ^= h >> _S15
        for i, value in zip(where, h.tolist(), strict=True):
            out[i] = value
    return out


class LocalDates:
    """The local date (ordinal) of a UTC instant, remembered per UTC hour.

    An hour is remembered only when its first and last microsecond have the same UTC
    offset and the same local date: then (one offset change per hour at most) every
    instant in it has that date. Other hours (a change of offset, or a local midnight
    inside the hour, as at +05:30) are computed per instant.
    """

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._hours: dict[int, int | None] = {}

    def ordinal(self, occurred: datetime) -> int:
        """``occurred.astimezone(tz).date().toordinal()``."""
        hour = int(occurred.timestamp() // 3600)
        try:
            cached = self._hours[hour]
        except KeyError:
            cached = self._hours[hour] = self._whole_hour(hour)
        if cached is None:
            return occurred.astimezone(self.tz).date().toordinal()
        return cached

    def _whole_hour(self, hour: int) -> int | None:
        if len(self._hours) > 100_000:  # far more hours than a replay touches
            self._hours.clear()
        start = datetime.fromtimestamp(hour * 3600, UTC).astimezone(self.tz)
        end = (datetime.fromtimestamp(hour * 3600, UTC) + _HOUR_LAST).astimezone(self.tz)
        if start.utcoffset() != end.utcoffset() or start.date() != end.date():
            return None
        return start.date().toordinal()


_HOUR_LAST: Final = timedelta(hours=1, microseconds=-1)


def bucket_keys(
    code: str,
    partition: int,
    labels: str,
    occurred: datetime,
    stamp: datetime,
    tz: ZoneInfo,
    dates: LocalDates | None = None,
) -> list[str]:
    """The count keys one event is written to (finer buckets only within their horizon).

    ``dates``, if given, is a :class:`LocalDates` for ``tz`` (the same dates, faster).
    """
    ts = occurred.timestamp()
    prefix = f"c|{code}|{partition}|"
    day = occurred.astimezone(tz).date().toordinal() if dates is None else dates.ordinal(occurred)
    keys = [f"{prefix}t|0|{labels}", f"{prefix}d|{day}|{labels}"]
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
        counts: TableLike,
        seen: TableLike,
        tz: ZoneInfo,
        on_write: Callable[[str, Value | None], None] | None = None,
        on_count: CountWrite | None = None,
    ) -> None:
        self.classifier = classifier
        self.topic_codes = topic_codes
        self.partitions = partitions
        self.counts = counts
        self.seen = seen
        self.tz = tz
        self.dates = LocalDates(tz)
        self.on_write = on_write or (lambda key, value: None)
        # A count key's write, given by its parts (the view need not split the key);
        # without it, count keys go to on_write as every other key.
        self.on_count = on_count
        # Writes of the batch in progress: key -> (partition, value, parts): each key is
        # written once per batch, with the offset of the last message applied to it;
        # ``parts`` are a count key's (code, res, bucket, labels, series), else None.
        self._counts: dict[str, tuple[int, int | Value, CountParts | None]] = {}
        self._sightings: dict[int, list[list[Any]]] = {}  # partition -> new first sightings
        self._sighting_day: dict[int, int] = {}
        if partitions > _PARTITION_MASK + 1:
            raise ValueError(f"at most {_PARTITION_MASK + 1} partitions, not {partitions}")
        # Event id (its UTF-8 bytes: 16 bytes less than a str each) -> its first sighting
        # packed into one int (a tuple costs three times the memory, and the index holds
        # every event id of the de-duplication window).
        self.first: dict[bytes, int] = {}
        self._code_ids: dict[str, int] = {}
        self._codes: list[str] = []
        for code in sorted(set(topic_codes.values())):  # the same ids in every counter
            self._pack(code, 0, 0)
        self.rebuild_index()

    def _pack(self, code: str, partition: int, offset: int) -> int:
        code_id = self._code_ids.get(code)
        if code_id is None:
            if len(self._codes) > _CODE_MASK:
                raise ValueError(f"more than {_CODE_MASK + 1} type codes")
            code_id = self._code_ids[code] = len(self._codes)
            self._codes.append(code)
        return (offset << _OFFSET_SHIFT) | (partition << _CODE_BITS) | code_id

    def _unpack(self, packed: int) -> Sighting:
        return Sighting(
            self._codes[packed & _CODE_MASK],
            (packed >> _CODE_BITS) & _PARTITION_MASK,
            packed >> _OFFSET_SHIFT,
        )

    def sighting(self, event_id: str) -> Sighting | None:
        """Where ``event_id`` was first seen, if it is within the window."""
        packed = self.first.get(event_id.encode())
        return None if packed is None else self._unpack(packed)

    def sightings(self) -> Iterator[tuple[str, Sighting]]:
        """Every event id in the index and its first sighting."""
        for event_id, packed in self.first.items():
            yield event_id.decode(), self._unpack(packed)

    def rebuild_index(self) -> None:
        """Rebuild the first-sighting index from the ``seen`` table (after recovery)."""
        self.first.clear()
        for key, value in self.seen.items():
            if key.startswith("s|") and value:
                p = int(key.split("|")[1])
                for event_id, code, offset in seen_entries(value):
                    raw_id = event_id.encode()
                    known = self.first.get(raw_id)
                    if known is None or (p, offset) < self._unpack(known)[1:]:
                        self.first[raw_id] = self._pack(code, p, offset)

    def compact(self) -> int:
        """Put recovered values in their compact in-memory forms (after recovery).

        Faust decodes changelog records into lists: counts become packed ints and
        ``seen`` batches their compressed JSON, as the counter's own writes hold them. Only
        memory changes (no changelog record); returns the number of values replaced.
        """
        replaced = 0
        for key, value in self.counts.items():
            if key.startswith(("c|", "d|", "x|")) and isinstance(value, list):
                packed = pack_count(*count_fields(value))
                if isinstance(packed, int):
                    self.counts.keep(key, packed)
                    replaced += 1
        for key, value in self.seen.items():
            if key.startswith("s|") and isinstance(value, list):
                self.seen.keep(key, pack_seen(orjson.dumps(value)))
                replaced += 1
        return replaced

    def _count_value(self, key: str) -> Any:
        pending = self._counts.get(key)
        return pending[1] if pending is not None else self.counts.get(key)

    def _bump(self, partition: int, key: str, add_units: int, add_events: int, offset: int) -> None:
        pending = self._counts.get(key)  # _count_value, inlined: four calls an event
        current = pending[1] if pending is not None else self.counts.get(key)
        if current is None:
            value = pack_count(add_units, add_events, offset)
        else:
            units, events, last = count_fields(current)
            if last >= offset:
                return  # this source message was already applied to this key
            value = pack_count(units + add_units, events + add_events, offset)
        self._counts[key] = (partition, value, None)

    def handle_batch(self, messages: Iterable[Message]) -> list[Outcome]:
        """Apply messages in order; write each touched key once at the end."""
        batch = messages if isinstance(messages, list) else list(messages)
        # Each message's key's murmur2, at once; used when the key is the event id.
        hashes = murmur2_many([b"" if m.key is None else m.key for m in batch])
        try:
            return [self._handle(m, h) for m, h in zip(batch, hashes, strict=True)]
        finally:
            self._flush()

    def _flush(self) -> None:
        try:
            for partition, entries in self._sightings.items():
                day = self._sighting_day[partition]
                # Offsets are per topic: the first sighting's type and offset name the batch.
                first_code, first_offset = entries[0][1], entries[0][2]
                key = f"s|{partition}|{day}|{first_code}{first_offset}"
                raw = orjson.dumps(entries)  # the changelog record
                self.seen.put(partition, key, pack_seen(raw), raw)
            put, put_count = self.counts.put, self.counts.put_count
            on_write, on_count = self.on_write, self.on_count
            for key, (partition, value, parts) in self._counts.items():
                # count_fields, inlined: the changelog record and the view's value.
                if isinstance(value, int):
                    fields = [
                        value >> _UNITS_SHIFT,
                        (value >> _FIELD_BITS) & _FIELD_MASK,
                        value & _FIELD_MASK,
                    ]
                else:
                    fields = [value[0], value[1], value[2]]
                if parts is None:
                    put(partition, key, value, fields)
                    on_write(key, fields)
                    continue
                code, res, bucket, labels, series = parts
                put_count(partition, key, series, bucket, value, fields)
                if on_count is None:
                    on_write(key, fields)
                else:
                    on_count(code, partition, res, bucket, labels, fields)
        finally:
            self._sightings.clear()
            self._sighting_day.clear()
            self._counts.clear()

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
        return self.handle_batch([Message(topic, partition, offset, key, value, stamp)])[0]

    def _handle(self, msg: Message, key_hash: int) -> Outcome:
        topic, partition, offset, key, value, stamp = msg
        code = self.topic_codes[topic]
        outcome = self.classifier.classify(topic, value, now=stamp)
        if isinstance(outcome, Rejected):
            self._bump(partition, f"x|{code}|{partition}|{outcome.reason.value}", 1, 1, offset)
            return Outcome(Result.REJECTED, rejection=outcome)
        assert isinstance(outcome, Accepted)
        event = outcome.event
        event_id = event.event_id
        raw_id = event_id.encode()
        home = (
            ((key_hash & 0x7FFFFFFF) % self.partitions)
            if key == raw_id  # key_hash is the murmur2 of the key, so of the event id
            else canonical_partition(event_id, self.partitions)
        )
        if home != partition or key != raw_id:
            # Counted only on its key's home partition, so duplicates always meet.
            return Outcome(Result.REROUTED, event.type, reroute_partition=home, event_id=event_id)
        first = self.first.get(raw_id)
        here = self._pack(code, partition, offset)
        if first is not None and first != here:
            self._bump(partition, f"d|{code}|{partition}", 1, 1, offset)
            return Outcome(Result.DUPLICATE, event.type, event_id=event_id)
        if first is None:
            self.first[raw_id] = here
            if partition not in self._sightings:
                self._sightings[partition] = []
                self._sighting_day[partition] = int(stamp.timestamp() // 86400)
            self._sightings[partition].append([event_id, code, offset])
        n = units(event)
        labels = join(label_values(event))
        occurred = event.occurred_at
        # bucket_keys and _bump, inlined (the same keys and values, fewer calls).
        ts = occurred.timestamp()
        prefix = f"c|{code}|{partition}|"
        buckets = [("t", 0), ("d", self.dates.ordinal(occurred))]
        age = stamp - occurred
        if age < HOUR_HORIZON:
            buckets.append(("h", int(ts // 3600)))
            if age < MINUTE_HORIZON:
                buckets.append(("m", int(ts // 60)))
        pending, get_count = self._counts, self.counts.get_count
        fresh = (n << _UNITS_SHIFT) | (1 << _FIELD_BITS) | offset  # pack_count(n, 1, offset)
        for res, bucket in buckets:
            bucket_key = f"{prefix}{res}|{bucket}|{labels}"
            known = pending.get(bucket_key)
            if known is not None:
                current, parts = known[1], known[2]
            else:
                series = f"{prefix}{res}|{labels}"
                current = get_count(bucket_key, series, bucket)
                parts = (code, res, bucket, labels, series)
            if current is None:
                count = fresh if 0 <= offset <= _FIELD_MASK else [n, 1, offset]
            elif isinstance(current, int):
                if current & _FIELD_MASK >= offset:
                    continue  # this source message was already applied to this key
                count = pack_count(
                    (current >> _UNITS_SHIFT) + n,
                    ((current >> _FIELD_BITS) & _FIELD_MASK) + 1,
                    offset,
                )
            else:
                if current[2] >= offset:
                    continue
                count = pack_count(current[0] + n, current[1] + 1, offset)
            pending[bucket_key] = (partition, count, parts)
        return Outcome(Result.COUNTED, event.type, event_id=event_id, occurred_at=occurred)

    def expire(self, partitions: Iterable[int], now: datetime, seen_days: int) -> int:
        """Delete minute, hour and de-duplication entries of ``partitions`` past retention.

        One pass over each table, whatever the number of partitions. Returns the number
        of keys deleted. Call it only for partitions this worker actively owns (it
        writes their changelogs), between batches.
        """
        wanted = {str(p) for p in partitions}
        minute_cut = int((now - MINUTE_HORIZON).timestamp() // 60) - 1
        hour_cut = int((now - HOUR_HORIZON).timestamp() // 3600) - 1
        day_cut = int(now.timestamp() // 86400) - seen_days
        doomed = list(_expired_counts(self.counts.items(), wanted, minute_cut, hour_cut))
        for partition, key in doomed:
            self.counts.put(partition, key, None)
            self.on_write(key, None)
        old = []
        for key, value in list(self.seen.items()):
            if key.startswith("s|"):
                _, p, day, _ = key.split("|", 3)
                if p in wanted and int(day) < day_cut:
                    old.append((int(p), key, value))
        for partition, key, value in old:
            self.seen.put(partition, key, None)
            for event_id, code, offset in seen_entries(value):
                raw_id = event_id.encode()
                if self.first.get(raw_id) == self._pack(code, partition, offset):
                    del self.first[raw_id]
        return len(doomed) + len(old)


def _expired_counts(
    items: Iterable[tuple[str, Any]], partitions: Set[str], minute_cut: int, hour_cut: int
) -> Iterator[tuple[int, str]]:
    """(partition, key) of the minute and hour counts of ``partitions`` before the cuts."""
    for key, _ in list(items):
        # Only minute and hour keys expire: "c|<code>|<p>|m|" or "c|<code>|<p>|h|".
        if not key.startswith("c|") or ("|m|" not in key and "|h|" not in key):
            continue
        _, _, p, res, bucket, _ = key.split("|", 5)
        if p not in partitions:
            continue
        if (res == "m" and int(bucket) < minute_cut) or (res == "h" and int(bucket) < hour_cut):
            yield int(p), key
