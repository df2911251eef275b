"""Restore the tables from their changelogs a fetch at a time, past Faust's per-record path.

What faust-streaming does with each changelog record while it restores a table (and on
standbys): the drain loop checks the partition's read offset and awaits the conductor's
``on_message`` under ``wait_first`` (four tasks), which waits for flow control and the
producer's ebb, decodes the record into an ``Event`` through the codec registry and puts
it on the changelog queue; ``Recovery._slurp_changelogs`` then takes it off the queue
under ``asyncio.wait_for``, records its offset in ``active_offsets`` (or
``standby_offsets``), buffers it for its table (``apply_changelog_batch`` every
``recovery_buffer_size`` records), and after every record asks whether recovery has
ended (``need_recovery`` walks every active partition) and whether the standbys are
ready. A restarted worker read about 4,000-6,000 records a second that way, slower
than replaying the events that wrote them (docs/performance.md, change 19).

:func:`take` picks a fetch's records of the changelog partitions Faust is restoring or
standing by for, and :func:`restore` applies them as that path would, without its
tasks, queue and registry lookups, record by record in ``getmany``'s order (round robin
over topics and partitions), so every decision falls between the same records:

- nothing is applied unless the flow is on, the consumer is not stopping and the
  consumer generation is the fetch's (recovery's own seek after the rebalance reads
  them again, as when the suspended flow interrupts the drain loop); after the
  producer's ebb, as the conductor waits for it;
- records of a paused partition are skipped (``getmany``), records below the read
  offset dropped (the drain loop); every other record is decoded by the changelog
  topic's schema (the conductor; plain JSON directly with ``orjson.loads``, which is
  Faust's json codec), then skipped if recovery has already applied its offset, else
  its offset recorded and the event (key, value and message: what
  ``apply_changelog_batch`` reads) appended to the table's buffer, flushed every
  ``recovery_buffer_size`` (``standby_buffer_size``) records;
- after each record, the loop's two checks: recovery ends when no active partition has
  records left (the buffers flushed first), asked only when the answer can have
  changed; the standbys are marked ready when none has any left.

Records fetched before a seek of their partition and handled after it are skipped (the
seek reads them again), and records left unapplied (the flow stopped, the partition
paused) are read again at the next fetch (:mod:`streams.fetch_positions`).

A record whose partition is neither restored nor on standby, a table with an
``on_changelog_event`` callback, or a changelog topic with another subscriber still
goes through Faust's path. The recovery loop keeps running and keeps its own checks
(its five-second timeout ends recovery when no record arrives).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from time import monotonic
from typing import Any, NamedTuple

import orjson
from faust.serializers import codecs
from faust.types import TP
from faust.utils import json as faust_json
from faust.utils.tracing import finish_span

from streams import fetch_positions
from streams.flow import flowing


class ChangelogMessage(NamedTuple):
    """What a changelog event's ``message`` must answer while it is restored."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any

    @property
    def tp(self) -> TP:
        """The message's topic partition."""
        return TP(self.topic, self.partition)


class ChangelogEvent:
    """A decoded changelog record, as ``Table.apply_changelog_batch`` reads it."""

    __slots__ = ("key", "message", "value")

    def __init__(self, key: Any, value: Any, message: ChangelogMessage) -> None:
        self.key = key
        self.value = value
        self.message = message


def take(consumer: Any, records: Mapping[TP, Sequence[Any]]) -> dict[TP, Sequence[Any]]:
    """The records of ``records`` (one fetch) that :func:`restore` applies."""
    app = consumer.app
    recovery = app.tables.recovery
    tables = recovery.tp_to_table
    index = app.topics._topic_name_index
    out = {}
    for tp, recs in records.items():
        table = tables.get(tp)
        if (
            table is None
            or table._on_changelog_event is not None
            or len(index.get(tp.topic, ())) != 1
            or (tp not in recovery.active_tps and tp not in recovery.standby_tps)
        ):
            continue
        out[tp] = recs
    return out


async def restore(
    consumer: Any, records: Mapping[TP, Sequence[Any]], active: set[TP] | None, generation: int
) -> None:
    """Apply one fetch's changelog ``records`` to their tables (see the module doc).

    ``generation`` is the consumer generation when the fetch returned.
    """
    app = consumer.app
    if not flowing(consumer, generation):
        return
    await app.producer.buffer.wait_until_ebb()
    if not flowing(consumer, generation):
        return
    recovery = app.tables.recovery
    read = consumer._read_offset
    buffered = consumer._buffered_partitions
    outstanding = fetch_positions.of(consumer)
    partitions: dict[TP, _Partition | None] = {}
    stale: set[TP] = set()
    needed = False  # need_recovery() known true since the active offsets last moved
    # In getmany's order (round robin over topics and partitions), so the end of
    # recovery and the standby check fall between the same records as in Faust's loop.
    for tp, rec in consumer.scheduler.iterate(records):
        try:
            part = partitions[tp]
        except KeyError:
            if outstanding.moved(tp):
                stale.add(tp)  # sought since the fetch: that seek reads them again
                part = partitions[tp] = None
            else:
                part = partitions[tp] = _partition(recovery, tp, active, buffered)
        if part is None:
            continue  # stale, paused (getmany skips it) or revoked since the fetch
        offset = rec.offset
        last = read.get(tp)
        if last is not None and offset < last:
            continue  # below the read offset: the drain loop drops it
        # Decoded before anything else, as the conductor decodes every delivered record
        # (one it cannot decode stops the worker even if recovery would skip it).
        message = ChangelogMessage(tp.topic, tp.partition, offset, rec.key, rec.value, None)
        key, value = part.decode(app, message)
        now = monotonic()
        if part.received is not None:
            part.received[tp] = now
        applied = part.offsets.get(tp)
        if applied is None or offset > applied:
            applied = part.offsets[tp] = offset
            buffer = part.buffer
            buffer.append(ChangelogEvent(key, value, message))
            if len(buffer) >= part.size:
                part.table.apply_changelog_batch(buffer)
                buffer.clear()
                recovery._last_flush_at = now
        # The loop's checks after each record. need_recovery() walks every active
        # partition, so it is only asked when its answer may have changed: after a
        # record of an active partition with nothing left to read (one that still has
        # records keeps recovery going), or at a standby's record when no answer is
        # known since the active offsets last moved.
        if recovery.in_recovery:
            if part.active and part.highwater is not None and part.highwater - applied > 0:
                needed = True
            elif part.active or not needed:
                _end_if_done(recovery)
                needed = recovery.in_recovery
        if not (recovery._standbys_span is None and recovery.tables.standbys_ready):
            _standbys_if_ready(recovery)
        read[tp] = offset  # delivered: the drain loop's read offset
    for tp, recs in records.items():  # done with; a paused partition's are read again
        if recs and (tp in stale or partitions.get(tp) is not None):
            outstanding.applied(tp, recs[-1].offset)


class _Partition:
    """What :func:`restore` needs of one changelog partition, looked up once per fetch."""

    __slots__ = (
        "active",
        "buffer",
        "highwater",
        "offsets",
        "plain_json",
        "received",
        "reconstruct",
        "schema",
        "size",
        "table",
    )

    def __init__(self, recovery: Any, tp: TP, table: Any, active: bool) -> None:
        self.table = table
        self.active = active
        if active:
            self.offsets = recovery.active_offsets
            self.size = recovery.buffer_sizes.setdefault(tp, table.recovery_buffer_size)
            self.received = recovery._active_events_received_at
            self.highwater = recovery.active_highwaters.get(tp)
        else:
            self.offsets = recovery.standby_offsets
            if tp not in recovery.buffer_sizes:
                recovery._standby_events_received_at[tp] = monotonic()
            self.size = recovery.buffer_sizes.setdefault(tp, table.standby_buffer_size)
            self.received = None
            self.highwater = None
        self.schema = table.changelog_topic.schema
        self.buffer = recovery.buffers[table]
        self.reconstruct = recovery.app.serializers.Model._maybe_reconstruct
        self.plain_json = _plain_json(self.schema)

    def decode(self, app: Any, message: ChangelogMessage) -> tuple[Any, Any]:
        """The record's key and value as the changelog topic's schema decodes them.

        With plain JSON (no key or value type, Faust's own ``json`` codec, which is
        ``orjson.loads``) that is ``orjson.loads`` of the bytes, and a dict given to
        ``Model._maybe_reconstruct`` as the registry does; without the registry's codec
        lookups per call. Anything else, and any error (raised as Faust raises it),
        takes the schema's own path.
        """
        if self.plain_json:
            with contextlib.suppress(Exception):  # the schema's path raises it as Faust does
                return self._plain(message)
        schema = self.schema
        key = schema.loads_key(app, message)
        if message.value is None and schema.allow_empty:
            return key, None
        return key, schema.loads_value(app, message)

    def _plain(self, message: ChangelogMessage) -> tuple[Any, Any]:
        key = None if message.key is None else orjson.loads(message.key)
        value = None if message.value is None else orjson.loads(message.value)
        if type(key) is dict:
            key = self.reconstruct(key)
        if type(value) is dict:
            value = self.reconstruct(value)
        return key, value


def _plain_json(schema: Any) -> bool:
    """Whether the registry decodes this schema's keys and values with ``orjson.loads``
    alone (then the dict check of ``Model._maybe_reconstruct``)."""
    return bool(
        schema.key_type is None
        and schema.value_type is None
        and schema.key_serializer == "json"
        and schema.value_serializer == "json"
        and type(codecs.get_codec("json")) is codecs.json
        and faust_json.loads.__defaults__ == (orjson.loads,)
    )


def _partition(
    recovery: Any, tp: TP, active: set[TP] | None, buffered: set[TP]
) -> _Partition | None:
    if active is not None and tp not in active and tp not in buffered:
        return None
    table = recovery.tp_to_table.get(tp)
    if table is None:
        return None
    if tp in recovery.active_tps:
        return _Partition(recovery, tp, table, True)
    if tp in recovery.standby_tps:
        return _Partition(recovery, tp, table, False)
    return None  # revoked since the fetch: recovery seeks again when it comes back


def _end_if_done(recovery: Any) -> None:
    """``_slurp_changelogs``' end of recovery: no active partition has records left."""
    if recovery.in_recovery and not recovery.need_recovery():
        recovery.flush_buffers()  # apply anything still buffered
        recovery._set_recovery_ended()
        if recovery._actives_span is not None:
            recovery._actives_span.set_tag("Actives-Ready", True)
        recovery.signal_recovery_end.set()


def _standbys_if_ready(recovery: Any) -> None:
    """``_slurp_changelogs``' standby check: none has records left."""
    if not recovery.standby_remaining_total():
        if recovery._standbys_span:
            finish_span(recovery._standbys_span)
            recovery._standbys_span = None
        recovery.tables.on_standbys_ready()
