"""Hand the source topics' fetched messages to the worker in batches, past Faust's path.

What faust-streaming does with each fetched message: ``Consumer._drain_messages``
iterates ``getmany`` one message at a time (a ``ConsumerMessage`` each, the monitor's
end offset), checks the partition's read offset (older messages are dropped, a jump
is recorded with ``_add_gap`` so commits can pass it), commits every
``broker_commit_every`` acks, and awaits the conductor's ``on_message`` under
``wait_first(callback, suspend_flow.wait())``: flow control, the producer buffer's
ebb, decoding into an ``Event``, a put on the stream's queue. The agent's stream then
takes it off the queue, calls sensors, and ``take_events`` gathers a batch and acks
each event (``Consumer.ack``: the offset goes to ``_acked`` and becomes committable).
That path cost more than the counting itself (docs/performance.md, change 10).

What :func:`install` changes, for the source topics only: the app's transport builds a
:class:`DrainConsumer`, whose ``_wait_next_records`` takes each fetch's records of
those topics out of the map before ``getmany`` sees it, hands them to the handler in
chunks of at most ``batch_max`` (in offset order per partition), and then does the
bookkeeping Faust's path would have done, once per chunk:

- a chunk is only applied while the flow is on (``flow_active``, ``suspend_flow``
  clear, ``app.flow_control`` active), the consumer is not stopping and the
  consumer generation is the one of the fetch. Otherwise the chunk and the rest of the
  fetch are dropped unread and unacknowledged, as Faust drops a message whose callback
  the suspended flow interrupted or a stale generation: a rebalance follows, and its
  ``perform_seek`` (or ``getmany``'s own, when it finds the flow stopped) reads them
  again from the committed offsets. It also waits for the producer buffer's ebb first.
- messages of a partition no longer active (paused) are skipped as ``getmany`` skips
  them; messages below the partition's read offset are dropped as the drain loop drops
  them. The read offsets then move to each partition's last message before the
  handler runs, as Faust's loop marks a message read once it is delivered, so a seek
  made while the batch is handled (the offset guard's re-read, ``read_to_end``) wins.
- while the handler runs, a stand-in for the chunk is in the consumer's unacked
  messages, so a rebalance's ``wait_empty`` and a stop wait for it as they wait for an
  agent's events. The handler runs under :func:`streams.batches.complete`: a
  cancellation waits for the chunk to finish (and be acknowledged) first, and a chunk
  that fails ends the process before anything more is committed.
- after the handler: the offsets are acknowledged (``Consumer.ack``'s bookkeeping:
  ``_acked``, ``_acked_index``, ``_n_acked``, waking ``wait_empty``), jumps in offsets
  become gaps, and every ``broker_commit_every`` acks the consumer commits (flushing
  the producer first, as always). The monitor learns each partition's inbound time
  and read offset per chunk (the consumer's idle diagnostics read them); its
  per-message counters and end offsets are not kept for these topics.

Records dropped unread (the flow stopped, a new generation, a paused partition) are
read again unless a seek moved their partition since the fetch
(:mod:`streams.fetch_positions`): Faust's path counts on the rebalance's seek to the
committed offsets, which does nothing for a partition never committed, and comes too
early for a fetch that returns after it.

The same fetch's records of the tables' changelogs (recovery and standbys) are restored
a fetch at a time by :mod:`streams.changelog_restore`. Every other topic's messages go on
through ``getmany``, the drain loop and the conductor exactly as before. The source
topic is registered with the conductor as an agent's stream would register it, so
subscription, assignment, acks and commits are Faust's own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any, NoReturn, Protocol

import faust
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from faust.types.topics import TopicT
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams import batches, changelog_restore, fetch_positions, fetch_wait
from streams.flow import flowing


class Record(Protocol):
    """What the handler gets: aiokafka's ``ConsumerRecord`` (timestamp in ms)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


Handler = Callable[[list[Any]], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Drain:
    """The topics whose messages go to ``handler``, at most ``batch_max`` at a time.

    ``fail`` ends the process when a batch fails (:func:`streams.batches.complete`).
    """

    topics: frozenset[str]
    handler: Handler
    batch_max: int
    fail: Callable[[int], NoReturn] = os._exit


class _InFlight:
    """Stands in the consumer's unacked messages for a chunk being handled."""

    __slots__ = ("__weakref__", "acked", "refcount")

    def __init__(self) -> None:
        self.acked = False
        self.refcount = 1  # wait_empty logs it


class DrainConsumer(driver.Consumer):
    """Faust's aiokafka consumer; the source topics' records go to the drain's handler,
    the changelogs' to :func:`streams.changelog_restore.restore`; its fetches wait at
    most :data:`streams.fetch_wait.FETCH_MAX_WAIT_MS` for data."""

    def _new_consumer_thread(self) -> fetch_wait.ConsumerThread:
        return fetch_wait.ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(self, timeout: float) -> Any:  # noqa: ASYNC109 - Faust's signature
        records, active = await super()._wait_next_records(timeout)
        generation = self.app.consumer_generation_id  # as getmany reads it
        drain: Drain | None = getattr(self.transport, "drain", None)
        if not records or drain is None:
            return _to_faust(self, records), active
        ours = {tp: recs for tp, recs in records.items() if tp.topic in drain.topics}
        logs = changelog_restore.take(self, records)
        if not ours and not logs:
            return _to_faust(self, records), active
        if ours:
            await deliver(self, drain, ours, active, generation)
        if logs:
            await changelog_restore.restore(self, logs, active, generation)
        rest = {tp: recs for tp, recs in records.items() if tp not in ours and tp not in logs}
        return _to_faust(self, rest), active


def _to_faust(consumer: Any, records: Mapping[TP, Sequence[Any]] | None) -> Any:
    """Records left to Faust's own path: it decides, so none is given back."""
    if records:
        outstanding = fetch_positions.of(consumer)
        for tp, recs in records.items():
            if recs:
                outstanding.applied(tp, recs[-1].offset)
    return records


class DrainTransport(driver.Transport):
    """Faust's aiokafka transport building a :class:`DrainConsumer`."""

    Consumer = DrainConsumer

    def __init__(self, url: Any, app: faust.App, drain: Drain) -> None:
        super().__init__(url, app)
        self.drain = drain


def install(app: faust.App, source: TopicT, handler: Handler, batch_max: int) -> None:
    """Subscribe ``source`` and hand its messages to ``handler`` in batches.

    Call before the app's consumer exists (e.g. in ``create_app``).
    """
    if getattr(app, "_consumer", None) is not None:
        raise RuntimeError("drain.install must run before the app's consumer is created")
    app.transport = DrainTransport(
        app.conf.broker_consumer, app, Drain(frozenset(source.topics), handler, batch_max)
    )
    app.topics.add(source)  # as an agent's stream would: subscription, acks


async def deliver(
    consumer: Any,
    drain: Drain,
    records: Mapping[TP, Sequence[Any]],
    active: set[TP] | None,
    generation: int,
) -> None:
    """Apply one fetch's ``records`` of the drain's topics, chunk by chunk (see module doc).

    ``generation`` is the consumer generation when the fetch returned.
    """
    for chunk in _chunks(records, drain.batch_max):
        if not flowing(consumer, generation):
            return
        await consumer.app.producer.buffer.wait_until_ebb()
        if not flowing(consumer, generation):
            return
        batch, offsets, gaps, paused = _take(consumer, chunk, active)
        if batch:
            token = _deliver(consumer, offsets)  # before anything else can run
            await batches.complete(_apply(consumer, drain, batch, offsets, gaps, token), drain.fail)
            every = consumer._commit_every
            if every is not None and consumer._n_acked >= every:
                consumer._n_acked = 0
                await consumer.commit()
        outstanding = fetch_positions.of(consumer)
        for tp, recs in chunk:  # all below the read offset: done with (_apply marks the rest)
            if tp not in paused and tp not in offsets:
                outstanding.applied(tp, recs[-1].offset)
        await asyncio.sleep(0)  # let the scrapes and timers in between chunks


def _chunks(
    records: Mapping[TP, Sequence[Any]], size: int
) -> Iterator[list[tuple[TP, Sequence[Any]]]]:
    chunk: list[tuple[TP, Sequence[Any]]] = []
    room = size
    for tp, recs in records.items():
        start = 0
        while start < len(recs):
            part = recs[start : start + room]
            chunk.append((tp, part))
            start += len(part)
            room -= len(part)
            if not room:
                yield chunk
                chunk, room = [], size
    if chunk:
        yield chunk


def _take(
    consumer: Any, chunk: list[tuple[TP, Sequence[Any]]], active: set[TP] | None
) -> tuple[list[Any], dict[TP, list[int]], list[tuple[TP, int, int]], set[TP]]:
    """The chunk's records to apply, their offsets per partition, offset jumps, and the
    paused partitions whose records are skipped (read again: streams/fetch_positions.py).

    Mirrors ``getmany`` (active partitions) and ``_drain_messages`` (read offsets).
    """
    read = consumer._read_offset
    buffered = consumer._buffered_partitions
    batch: list[Any] = []
    offsets: dict[TP, list[int]] = {}
    gaps: list[tuple[TP, int, int]] = []
    paused: set[TP] = set()
    for tp, recs in chunk:
        if active is not None and tp not in active and tp not in buffered:
            paused.add(tp)
            continue
        last = read.get(tp)
        taken = offsets.setdefault(tp, [])
        for rec in recs:
            offset = rec.offset
            if last is None or offset >= last:
                if last and offset - last > 1:
                    gaps.append((tp, last + 1, offset))
                batch.append(rec)
                taken.append(offset)
                last = offset
    return batch, {tp: offs for tp, offs in offsets.items() if offs}, gaps, paused


def _deliver(consumer: Any, offsets: dict[TP, list[int]]) -> _InFlight:
    """Mark the chunk read and in flight (the drain loop's and the stream's bookkeeping)."""
    token = _InFlight()
    consumer._unacked_messages.add(token)
    read = consumer._read_offset
    monitor = consumer.app.monitor
    now = monotonic()
    for tp, offs in offsets.items():
        read[tp] = offs[-1]
        if monitor is not None:
            monitor.stream_inbound_time[tp] = now  # the consumer's idle diagnostics
            monitor.tp_read_offsets[tp] = offs[-1]
    return token


async def _apply(
    consumer: Any,
    drain: Drain,
    batch: list[Any],
    offsets: dict[TP, list[int]],
    gaps: list[tuple[TP, int, int]],
    token: _InFlight,
) -> None:
    """Run the handler on ``batch``, then acknowledge it (see module doc)."""
    await drain.handler(batch)
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    for tp, start, end in gaps:
        if acks_enabled_for(tp.topic):
            await consumer._add_gap(tp, start, end)
    _ack(consumer, offsets)
    outstanding = fetch_positions.of(consumer)
    for tp, offs in offsets.items():
        outstanding.applied(tp, offs[-1])
    token.acked = True
    consumer._unacked_messages.discard(token)
    notify(consumer._waiting_for_ack)


def _ack(consumer: Any, offsets: dict[TP, list[int]]) -> None:
    """``Consumer.ack``'s bookkeeping for many offsets at once."""
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    with ack_lock:
        n = 0
        for tp, offs in offsets.items():
            if not acks_enabled_for(tp.topic):
                continue
            committed = consumer._committed_offset.get(tp)
            index = consumer._acked_index[tp]
            acked = consumer._acked[tp]
            for offset in offs:
                if (committed is None or offset >= committed) and offset not in index:
                    index.add(offset)
                    acked.append(offset)
                    n += 1
        consumer._n_acked += n
