"""The faust-streaming application: classify, de-duplicate, count, serve /metrics.

The four contract topics' fetched messages reach :func:`apply` in batches of up to
``BATCH_MAX``, straight from Faust's consumer (streams/drain.py: no agent, no
per-message event or stream; Faust still assigns, acknowledges and commits). For
each message it asks the :class:`~streams.counter.EventCounter` what to do: count
it, skip a duplicate, dead-letter a rejection (with the original bytes and its
source topic, partition, offset and reason in headers) or reroute an event that
arrived on a partition other than its key's home. Counts live in two
changelog-backed tables (``counts`` and ``seen``); the collector sums them at scrape
time over the partitions this worker actively owns.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
import structlog
from faust.types import TP
from faust.web import Request, Response, View
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    PlatformCollector,
    ProcessCollector,
)

from opsmetrics.settings import Settings
from services.contract.classify import Classifier
from services.kafka_access import ssl_context
from services.topics import deadletter_topic, event_topics
from streams import (
    api,
    batches,
    consumer_fast_path,
    count_store,
    drain,
    heap,
    producer_flush,
    recovery_seek,
)
from streams.collector import StreamCollector
from streams.counter import EventCounter, Message, Outcome, Result, count_lists, message_stamp
from streams.delays import DelayHistogram
from streams.exposition import TextRenderer
from streams.labels import BY_TYPE
from streams.offsets import Gap, OffsetGuard
from streams.periods import ChangelogReader, PeriodCollector, changelog_topic
from streams.view import CountsView

log = structlog.get_logger(__name__)

DELAY_BUCKETS = (
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    15,
    60,
    300,
    3600,
    6 * 3600,
    86400,
    7 * 86400,
    30 * 86400,
)
EXPIRE_EVERY_S = 600.0
QUIET_S = 10.0  # an active partition this long without messages must be read to its end
BATCH_MAX = 2000  # messages per batch at most: each touched key is written once per batch


class FaustTable:
    """A Faust table as :class:`~streams.counter.TableLike`: writes name their partition.

    ``put`` changes ``table.data`` at once and queues the changelog record (serialized
    by the changelog topic, as ``send_changelog`` would); :meth:`send_pending` then
    hands each changelog partition's records to the producer as one batch. Faust's
    one-message-at-a-time ``send_changelog`` cost several times the counting itself
    (docs/performance.md). Faust flushes the producer before it commits offsets, and
    that flush covers these batches, so a commit never precedes its table writes. A
    batch the broker refuses ends the worker at once (streams/batches.py), before the
    next commit could count its events as done.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        # The memory store's own mapping (a dict, or the counts' CountStore), used
        # directly: the store's generic Mapping.get raises KeyError for every new key.
        self.data: MutableMapping[str, Any] = table.data.data
        # get_count(key, series, bucket): the value of a count key, its parts sparing
        # the count store a split (the counter's TableLike.get_count); bound here, one
        # call per lookup.
        self.get_count: Callable[[str, str, int], Any] = (
            self.data.get_count
            if isinstance(self.data, count_store.CountStore)
            else self._get_plain
        )
        self.set_count: Callable[[str, str, int, Any], None] = (
            self.data.set_count
            if isinstance(self.data, count_store.CountStore)
            else self._set_plain
        )
        self.pending: list[tuple[int, bytes, bytes | None]] = []
        if table.key_serializer != "json" or table.value_serializer != "json":
            # Faust's json codec is orjson.dumps: put() calls it directly, without
            # the codec lookup per record.
            raise ValueError(f"table {table.name}: FaustTable writes json changelog records")
        # The batch handler and the expiry timer both send: one at a time, in write order.
        self.lock = asyncio.Lock()

    def get(self, key: str) -> Any:
        """The value of ``key`` or None."""
        return self.data.get(key)

    def _get_plain(self, key: str, series: str, bucket: int) -> Any:
        return self.data.get(key)

    def put(self, partition: int, key: str, value: Any | None, record: Any = None) -> None:
        """Set or delete ``key``; its changelog record waits for :meth:`send_pending`.

        ``record`` is serialized instead of ``value`` when given (``value`` is then a
        compact in-memory form, e.g. a packed count).
        """
        raw_key = orjson.dumps(key)  # Faust's json codec, without its lookup per call
        if value is None:
            self.data.pop(key, None)
            self.pending.append((partition, raw_key, None))
        else:
            self.data[key] = value
            shown = value if record is None else record
            # bytes are a value already serialized (the counter's ``seen`` batches).
            raw_value = shown if isinstance(shown, bytes) else orjson.dumps(shown)
            self.pending.append((partition, raw_key, raw_value))

    def put_count(
        self, partition: int, key: str, series: str, bucket: int, value: Any, record: Any
    ) -> None:
        """:meth:`put` of the count key ``key`` (not None), given also by its parts (the
        counter's ``TableLike.put_count``): the count store need not split it."""
        self.set_count(key, series, bucket, value)
        self.pending.append((partition, orjson.dumps(key), orjson.dumps(record)))

    def _set_plain(self, key: str, series: str, bucket: int, value: Any) -> None:
        self.data[key] = value

    def keep(self, key: str, value: Any) -> None:
        """Replace the in-memory value of ``key`` by an equivalent form (no changelog record)."""
        self.data[key] = value

    def items(self) -> Any:
        """Every key and value held in memory (all partitions, standbys included)."""
        return self.data.items()

    async def send_pending(self) -> None:
        """Queue the pending changelog records on the producer, one batch per partition."""
        async with self.lock:
            await self._send_pending()

    async def _send_pending(self) -> None:
        if not self.pending:
            return
        producer = self.table.app.producer._ensure_producer()  # aiokafka's producer
        topic = self.table.changelog_topic.get_topic_name()
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for partition, key, value in self.pending:
            by_partition[partition].append((key, value))
        self.pending.clear()
        for partition, records in by_partition.items():
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    sent = await producer.send_batch(batch, topic, partition=partition)
                    sent.add_done_callback(_exit_unless_sent)
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            sent = await producer.send_batch(batch, topic, partition=partition)
            sent.add_done_callback(_exit_unless_sent)


def _exit_unless_sent(sent: asyncio.Future[Any]) -> None:
    """A changelog batch that failed must stop the worker before the next commit."""
    if sent.cancelled():
        batches.exit_now("changelog_send_failed", asyncio.CancelledError())
    error = sent.exception()
    if error is not None:
        batches.exit_now("changelog_send_failed", error)


@dataclass
class StreamState:
    """Everything the batch handler, the rebalance hooks and the web pages share."""

    settings: Settings
    partitions: int
    view: CountsView = field(default_factory=CountsView)
    ready: bool = False
    active: set[tuple[str, int]] = field(default_factory=set)
    last_event: dict[str, float] = field(default_factory=dict)
    last_expired: dict[int, float] = field(default_factory=dict)
    last_read: dict[tuple[str, int], float] = field(default_factory=dict)  # monotonic
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)


def create_app(settings: Settings, partitions: int) -> tuple[faust.App, StreamState]:
    """Build the worker's Faust app for ``settings``; source topics have ``partitions``."""
    producer_flush.install()  # commit offsets only after every table write was sent
    consumer_fast_path.install()  # no four tasks per message (docs/performance.md)
    recovery_seek.install()  # a negative changelog start offset means the beginning
    state = StreamState(settings, partitions)
    topics = event_topics(settings)  # full name -> EventType
    codes = {name: BY_TYPE[etype].code for name, etype in topics.items()}
    name_of_code = {code: name for name, code in codes.items()}

    app = faust.App(
        f"{settings.topic_prefix}stream",
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        broker_credentials=credentials(settings),
        store="memory://",
        topic_partitions=partitions,
        topic_replication_factor=settings.topic_replication,
        topic_disable_leader=True,
        table_standby_replicas=1,
        consumer_auto_offset_reset="earliest",
        # At most a batch per fetch handed over: the partitions it drained are fetched
        # again in the consumer's thread while the batch is counted (all that was
        # buffered at once made fetching and counting take turns; docs/performance.md).
        broker_max_poll_records=BATCH_MAX,
        producer_acks=-1,
        # Batch changelog and dead-letter messages into fewer produce requests.
        producer_linger=0.01,
        producer_max_batch_size=512 * 1024,
        web_enabled=True,
        web_bind=settings.worker_host,
        web_host=settings.worker_host,
        web_port=settings.worker_port,
        datadir=str(settings.data_dir / "faust"),
        loghandlers=[],
    )
    source = app.topic(
        *topics,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
    deadletter = app.topic(
        deadletter_topic(settings), key_serializer="raw", value_serializer="raw", internal=False
    )
    reroute_topics = {
        name: app.topic(name, key_serializer="raw", value_serializer="raw") for name in topics
    }
    # Keys are strings and values small JSON lists (see streams/counter.py).
    counts = app.Table("counts", partitions=partitions)
    count_store.install(counts)  # count keys grouped by series (streams/count_store.py)
    seen = app.Table("seen", partitions=partitions)
    classifier = Classifier.for_prefix(
        settings.topic_prefix,
        {slug: force.divisions for slug, force in settings.forces.items()},
        future_tolerance=_tolerance(settings),
    )
    tables = (FaustTable(counts), FaustTable(seen))
    guard = OffsetGuard(tables[0], codes)
    # The period API's day buckets: this worker's partitions from the view, the others
    # from the counts changelog (streams/periods.py).
    days = ChangelogReader(settings, changelog_topic(settings), partitions, view=state.view)
    counter = EventCounter(
        classifier,
        codes,
        partitions,
        *tables,
        settings.tz,
        on_write=state.view.set,
        on_count=state.view.set_count,
    )
    delay = DelayHistogram(
        "ops_event_delay_seconds",
        "Delay from occurred_at to processing, for counted events.",
        DELAY_BUCKETS,
    )
    state.registry.register(delay)
    heartbeat = Gauge(
        "ops_worker_heartbeat_timestamp_seconds",
        "Last time this worker's processing loop was alive (Unix seconds).",
        registry=state.registry,
    )
    Gauge(
        "ops_source_partitions",
        "Partitions of each contract topic (every one must be owned by exactly one worker).",
        registry=state.registry,
    ).set(partitions)
    recovering = Gauge(
        "ops_worker_recovering",
        "1 while this worker restores its tables and exports no counts.",
        registry=state.registry,
    )
    recovering.set_function(lambda: 0 if state.ready else 1)
    ProcessCollector(registry=state.registry)
    PlatformCollector(registry=state.registry)

    def lag() -> Mapping[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        consumer = app.consumer
        assigned = consumer.assignment()  # during a rebalance this shrinks before `active`
        for code, p in state.active:
            tp = TP(name_of_code[code], p)
            if tp not in assigned:
                continue
            high = consumer.highwater(tp)
            # Faust keeps the last committed offset per partition (not a public API).
            committed = getattr(consumer, "_committed_offset", {}).get(tp)
            if high is not None:
                out[(tp.topic, p)] = max(0, high - (committed or 0))
        return out

    def active_or_none() -> set[tuple[str, int]] | None:
        """The partitions whose counts are exported: none at all while recovering."""
        return state.active if state.ready else None

    state.registry.register(
        PeriodCollector(
            state.view,
            settings.forces,
            settings.tz,
            active=active_or_none,
            clock=lambda: datetime.now(UTC),
        )
    )
    state.registry.register(
        StreamCollector(
            state.view,
            settings.forces,
            settings.tz,
            active=active_or_none,
            clock=lambda: datetime.now(UTC),
            last_event=state.last_event,
            lag=lag,
        )
    )

    async def apply(records: list[drain.Record]) -> None:
        """Count one batch of source messages (streams/drain.py acknowledges it after)."""
        messages = [
            Message(r.topic, r.partition, r.offset, r.key, r.value, message_stamp(r.timestamp))
            for r in records
        ]
        now = time.monotonic()
        for msg in messages:
            state.last_read[(msg.topic, msg.partition)] = now
        # Never apply a message beyond a gap in a partition's offsets (streams/offsets.py).
        messages, gaps = guard.split(messages)
        outcomes = counter.handle_batch(messages)
        guard.advance()  # the next offsets, after the counts they vouch for
        for gap in gaps:
            await _read_again(gap)
        # All writes of the batch are queued on the producer before its events are
        # acknowledged, and Faust flushes the producer before committing offsets.
        for table in tables:
            await table.send_pending()
        delays: dict[str, list[float]] = {}  # per type: the histogram files them at once
        now = time.time()
        for msg, outcome in zip(messages, outcomes, strict=True):
            if outcome.result is not Result.COUNTED or outcome.type is None:
                await _follow_up(outcome, msg)
            else:
                assert outcome.occurred_at is not None
                found = delays.get(outcome.type)
                if found is None:
                    found = delays[outcome.type] = []
                found.append(now - outcome.occurred_at.timestamp())
        for type_, values in delays.items():
            state.last_event[type_] = now
            delay.observe(type_, values)

    async def _read_again(gap: Gap) -> None:
        tp = TP(gap.topic, gap.partition)
        earliest = (await app.consumer.earliest_offsets(tp)).get(tp, 0)
        resume = guard.plan(gap, earliest, time.monotonic())
        if resume is None:
            return  # a re-read from an earlier seek is on its way
        where = {"topic": gap.topic, "partition": gap.partition}
        if resume == gap.expected:
            log.warning("offset_gap_reading_again", **where, expected=gap.expected, got=gap.got)
        elif resume == gap.got:
            log.warning("offset_gap_accepted", **where, expected=gap.expected, got=gap.got)
        else:
            log.error(
                "source_messages_deleted_unread", **where, expected=gap.expected, earliest=resume
            )
        await app.consumer.seek(tp, resume)

    @app.timer(interval=QUIET_S / 2)  # type: ignore[untyped-decorator]
    async def read_to_end() -> None:
        """Re-read a quiet active partition whose applied offsets stop short of its end.

        A gap is otherwise only seen when a later message arrives; this also catches
        offsets committed past messages never applied, and a partition that stopped
        being fetched.
        """
        if not state.ready:
            return
        now = time.monotonic()
        tps = [
            TP(name_of_code[code], p)
            for code, p in sorted(state.active)
            if now - state.last_read.get((name_of_code[code], p), now) >= QUIET_S
        ]
        if not tps:
            return  # every partition is flowing: no need to ask the broker
        ends = await app.consumer.highwaters(*tps)
        firsts = await app.consumer.earliest_offsets(*tps)
        for tp in tps:
            end, first = ends.get(tp), firsts.get(tp, 0)
            if end is None:
                continue
            nxt = guard.expected(tp.topic, tp.partition)
            start = first if nxt is None else nxt
            if start >= end:
                continue
            where = {"topic": tp.topic, "partition": tp.partition}
            if start < first:  # deleted by retention before it was read
                log.error("source_messages_deleted_unread", **where, expected=start, earliest=first)
                guard.skip_to(tp.topic, tp.partition, first)
                await tables[0].send_pending()
                start = first
            log.warning("partition_behind_reading_again", **where, next=start, end=end)
            state.last_read[(tp.topic, tp.partition)] = now
            app.consumer.resume_partitions({tp})
            await app.consumer.seek(tp, start)

    @app.timer(interval=60.0)  # type: ignore[untyped-decorator]
    async def expire() -> None:
        if not state.ready:
            return
        now, clock = datetime.now(UTC), time.monotonic()
        due = sorted(
            p
            for p in {p for _, p in state.active}
            if clock - state.last_expired.get(p, 0.0) >= EXPIRE_EVERY_S
        )
        if not due:
            return
        for p in due:
            state.last_expired[p] = clock
        removed = counter.expire(due, now, settings.dedup_days)  # one pass for all of them
        for table in tables:
            await table.send_pending()
        if removed:
            log.info("expired", partitions=due, keys=removed)

    async def _follow_up(outcome: Outcome, msg: Message) -> None:
        value = msg.value
        if outcome.result is Result.REJECTED:
            assert outcome.rejection is not None
            rej = outcome.rejection
            await deadletter.send(
                key=msg.key,
                value=value,
                headers=[
                    ("source_topic", msg.topic.encode()),
                    ("source_partition", str(msg.partition).encode()),
                    ("source_offset", str(msg.offset).encode()),
                    ("reason", rej.reason.value.encode()),
                    ("field", (rej.field or "").encode()),
                    ("detail", rej.detail.encode()),
                ],
            )
            log.info(
                "rejected",
                topic=msg.topic,
                partition=msg.partition,
                offset=msg.offset,
                reason=rej.reason.value,
                field=rej.field,
            )
        elif outcome.result is Result.REROUTED:
            assert outcome.event_id is not None
            await reroute_topics[msg.topic].send(
                key=outcome.event_id.encode(), value=value, partition=outcome.reroute_partition
            )
            log.info(
                "rerouted",
                topic=msg.topic,
                partition=msg.partition,
                offset=msg.offset,
                to_partition=outcome.reroute_partition,
                event_id=outcome.event_id,
            )
        elif outcome.result is Result.DUPLICATE:
            log.debug(
                "duplicate",
                topic=msg.topic,
                partition=msg.partition,
                offset=msg.offset,
                event_id=outcome.event_id,
            )

    @app.on_partitions_revoked.connect
    def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        state.ready = False
        days.release()  # their next owner may be another worker: read the changelog

    @app.on_rebalance_complete.connect
    def on_rebalanced(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        actives = app.assignor.assigned_actives()
        state.active = {(codes[tp.topic], tp.partition) for tp in actives if tp.topic in codes}
        counter.compact()  # recovered lists -> the in-memory forms (streams/counter.py)
        state.view.rebuild(count_lists(counts.data.items()))
        # A changelog partition is written by the owner of that partition of every
        # source topic (Faust assigns them together).
        days.own(
            {p for p in range(partitions) if all((c, p) in state.active for c in name_of_code)}
        )
        counter.rebuild_index()
        guard.reset()
        now = time.monotonic()  # each partition gets QUIET_S to start flowing
        state.last_read = {(name_of_code[c], p): now for c, p in state.active}
        heap.settle()  # a full collection now, none of the recovered state later
        state.ready = True
        log.info("rebalanced", active=sorted(state.active))

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    async def beat() -> None:
        heartbeat.set(time.time())

    metrics_text = TextRenderer(state.registry)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body = metrics_text.render()
            return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            body = {
                "status": "ok" if state.ready else "recovering",
                "active_partitions": sorted({p for _, p in state.active}),
            }
            return self.json(body, status=200 if state.ready else 503)

    api.register(app, settings, days)
    # The source topics' fetched messages go to apply() in batches, past Faust's
    # per-message path; acks and commits stay Faust's (streams/drain.py).
    drain.install(app, source, apply, BATCH_MAX)
    return app, state


def _tolerance(settings: Settings) -> Any:
    from datetime import timedelta

    return timedelta(seconds=settings.future_tolerance_s)


def credentials(settings: Settings) -> Any:
    """Faust's broker credentials for the configured security protocol (None: plaintext).

    Faust picks the protocol from the credentials' type: SASL over TLS needs the
    SSL context, TLS alone is :class:`faust.SSLCredentials`.
    """
    context = ssl_context(settings)
    if settings.kafka_sasl_mechanism:
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
