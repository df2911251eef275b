"""Exact figures for any date range, from the day buckets of the counts changelog.

A worker's tables hold only the partitions it owns, so the period API answers the
partitions it owns from its :class:`~streams.view.CountsView` (which mirrors every
table write) and reads the others from the ``counts`` changelog topic itself:
:class:`ChangelogReader` consumes those partitions from the beginning (no consumer
group) and keeps the latest value of each day-bucket key
(``c|<type>|<p>|d|<local date ordinal>|<labels>``, see streams/counter.py) in a
:class:`DayBuckets`. Before answering, a request waits until the reader has applied
everything up to those partitions' end offsets at the time of the request, so the
answer holds every count written before it was asked, whichever worker is asked.
Writes of source messages not yet committed are safe: a replay re-writes identical
values (each value holds its last source offset).

The rest is pure and unit-tested: :func:`parse_query` (400 errors naming the
parameter), :func:`answer` (totals and groups) and :class:`PeriodCollector` (the
``ops_period_units`` gauge: this and the previous financial year).
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson
import structlog
from prometheus_client.core import GaugeMetricFamily, Metric, Sample
from prometheus_client.registry import Collector

from opsmetrics.settings import Force, Settings
from services.contract.events import ORIGINS, REFERRERS, RISKS
from streams import changelogs
from streams.labels import BY_CODE, FAMILIES, all_label_sets, join
from streams.view import CountsView

log = structlog.get_logger(__name__)

#: Measure name in answers, by type code (units: warrants, persons, children, referrals).
MEASURES: Final[dict[str, str]] = {
    "w": "warrants_executed",
    "a": "arrests",
    "s": "children_safeguarded",
    "r": "referrals_received",
}
LABEL_DIMENSIONS: Final = ("division", "origin", "previously_known", "referrer", "risk")
TIME_DIMENSIONS: Final = ("week", "month")
GROUP_BY: Final = (*LABEL_DIMENSIONS, *TIME_DIMENSIONS)
PARAMETERS: Final = ("from", "to", "force", "division", "group_by")
MAX_DAYS: Final = 36_525  # a hundred years per request
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Totals = dict[str, int | None]
Bucket = tuple[int, str, tuple[str, ...], int]  # (local date ordinal, type code, labels, units)
GroupKey = tuple[str | bool, ...]


# --------------------------------------------------------------------------- the query
class ParamError(ValueError):
    """A bad query parameter: answered with 400 and this body."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message

    def body(self) -> dict[str, str]:
        """The JSON error body."""
        return {"error": "invalid_parameter", "parameter": self.parameter, "message": self.message}


@dataclass(frozen=True, slots=True)
class Query:
    """A validated period query: inclusive local dates, optional filters and grouping."""

    start: date
    end: date
    force: str | None = None
    division: str | None = None
    group_by: str | None = None


def _parse_date(name: str, value: str) -> date:
    if not _DATE.fullmatch(value):
        raise ParamError(name, f"must be a date as YYYY-MM-DD, got {value[:40]!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ParamError(name, f"{value!r} is not a real date") from None


def parse_query(pairs: Sequence[tuple[str, str]], forces: Mapping[str, Force]) -> Query:
    """Validate the query string's (name, value) pairs; raise :class:`ParamError`."""
    given: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            raise ParamError(name[:40], f"unknown parameter; allowed: {', '.join(PARAMETERS)}")
        if name in given:
            raise ParamError(name, "given more than once")
        given[name] = value
    for name in ("from", "to"):
        if name not in given:
            raise ParamError(name, "required (a date as YYYY-MM-DD)")
    start = _parse_date("from", given["from"])
    end = _parse_date("to", given["to"])
    if end < start:
        raise ParamError("to", f"must not be before from ({start.isoformat()})")
    if (end - start).days >= MAX_DAYS:
        raise ParamError("to", f"the range may span at most {MAX_DAYS} days")
    force = given.get("force")
    if force is not None and force not in forces:
        raise ParamError("force", f"unknown force {force[:40]!r}; configured: {', '.join(forces)}")
    division = given.get("division")
    if division is not None:
        owners = [
            f for f in ([force] if force else sorted(forces)) if division in forces[f].divisions
        ]
        if not owners:
            where = f"force {force!r}" if force else "any configured force"
            raise ParamError("division", f"{division[:40]!r} is not a division of {where}")
        if len(owners) > 1:
            raise ParamError(
                "division", f"{division!r} is a division of {', '.join(owners)}: give force too"
            )
        force = force or owners[0]
    group_by = given.get("group_by")
    if group_by is not None and group_by not in GROUP_BY:
        raise ParamError("group_by", f"must be one of {', '.join(GROUP_BY)}")
    return Query(start, end, force, division, group_by)


# --------------------------------------------------------------------------- the buckets
class DayBuckets:
    """The latest units of every day-bucket key, all source partitions."""

    def __init__(self) -> None:
        # local date ordinal -> (type code, source partition, labels) -> units
        self.days: dict[int, dict[tuple[str, int, tuple[str, ...]], int]] = {}
        # One bucket tuple per (type code, partition, labels), shared by all its days:
        # a tuple and label strings per day key cost about 300 bytes each (a third of
        # the worker's memory per event, docs/performance.md "Memory").
        self._buckets: dict[tuple[str, str, str], tuple[str, int, tuple[str, ...]]] = {}

    def __len__(self) -> int:
        return sum(len(keys) for keys in self.days.values())

    def apply(self, key: str, value: Sequence[int] | None) -> None:
        """Mirror one changelog record (``None`` deletes); other keys are ignored."""
        if not key.startswith("c|"):
            return
        parts = key.split("|", 5)
        if len(parts) != 6 or parts[3] != "d" or parts[1] not in MEASURES:
            return
        day = int(parts[4])
        name = (parts[1], parts[2], parts[5])
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = (parts[1], int(parts[2]), tuple(parts[5].split(",")))
        if value is None:
            keys = self.days.get(day)
            if keys is not None:
                keys.pop(bucket, None)
                if not keys:
                    del self.days[day]
            return
        self.days.setdefault(day, {})[bucket] = int(value[0])

    def drop_partitions(self, partitions: Set[int]) -> None:
        """Forget the buckets of ``partitions``."""
        if not partitions:
            return
        for day in list(self.days):
            keys = self.days[day]
            for bucket in [b for b in keys if b[1] in partitions]:
                del keys[bucket]
            if not keys:
                del self.days[day]

    def between(self, start: date, end: date) -> Iterator[Bucket]:
        """Every bucket with ``start <= day <= end`` (inclusive local dates)."""
        lo, hi = start.toordinal(), end.toordinal()
        if hi - lo + 1 <= len(self.days):
            days: Iterable[int] = (d for d in range(lo, hi + 1) if d in self.days)
        else:
            days = (d for d in self.days if lo <= d <= hi)
        for day in days:
            for (code, _, labels), n in self.days[day].items():
                yield day, code, labels, n


# --------------------------------------------------------------------------- the answer
def iso_week(day: date) -> str:
    """The ISO week of a date, e.g. ``2025-W14`` (weeks start on Monday)."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _periods(query: Query) -> list[tuple[str, date, date]]:
    """(label, first day, last day) of each week or month of the range, clipped to it."""
    out: list[tuple[str, date, date]] = []
    day, end = query.start, query.end.toordinal()
    while True:
        if query.group_by == "week":
            label, last = iso_week(day), day.toordinal() + 6 - day.weekday()
        else:
            label = f"{day.year:04d}-{day.month:02d}"
            last = day.toordinal() + calendar.monthrange(day.year, day.month)[1] - day.day
        last = min(last, end)  # ordinals: no overflow past 9999-12-31
        out.append((label, day, date.fromordinal(last)))
        if last == end:
            return out
        day = date.fromordinal(last + 1)


def _label_value(dim: str, raw: str) -> str | bool:
    return raw == "true" if dim == "previously_known" else raw


def _group_keys(query: Query, forces: Mapping[str, Force]) -> list[GroupKey]:
    """The groups listed even when zero: configured divisions or the enumeration."""
    dim = query.group_by
    if dim == "division":
        return [
            (f, d)
            for f in ([query.force] if query.force else sorted(forces))
            for d in forces[f].divisions
            if query.division in (None, d)
        ]
    values: tuple[str, ...] = {
        "origin": ORIGINS,
        "previously_known": ("false", "true"),
        "referrer": REFERRERS,
        "risk": RISKS,
    }[dim or ""]
    return [(_label_value(dim or "", v),) for v in values]


def _empty_totals(dim: str | None) -> Totals:
    """Zero for each measure that has ``dim`` as a label, None for the others."""
    out: Totals = {}
    for code, name in MEASURES.items():
        applies = dim is None or dim in TIME_DIMENSIONS or dim in BY_CODE[code].labels
        out[name] = 0 if applies else None
    return out


def answer(
    buckets: Iterable[Bucket], query: Query, forces: Mapping[str, Force], timezone: str
) -> dict[str, Any]:
    """The JSON answer for ``query`` from the day buckets in its range.

    Groups: ``division`` has the key ``{"force", "division"}``; the label dimensions
    ``{"<dim>": value}`` (``previously_known`` a boolean) with null totals for the
    measures that lack that label; ``week`` and ``month`` ``{"week": "2025-W14"}``
    or ``{"month": "2025-04"}`` with the group's ``from`` and ``to`` clipped to the
    range. Configured values and every period are listed, zeros included; a value
    found in the counts but no longer configured is listed after them.
    """
    dim = query.group_by
    totals: Totals = _empty_totals(None)
    groups: dict[GroupKey, Totals] = {}
    spans: dict[GroupKey, tuple[date, date]] = {}
    period_of: dict[int, GroupKey] = {}
    key: GroupKey
    if dim in TIME_DIMENSIONS:
        for label, first, last in _periods(query):
            spans[(label,)] = (first, last)
            groups[(label,)] = _empty_totals(dim)
            for d in range(first.toordinal(), last.toordinal() + 1):
                period_of[d] = (label,)
    elif dim is not None:
        for key in _group_keys(query, forces):
            groups[key] = _empty_totals(dim)
    extra: dict[GroupKey, Totals] = {}
    lo, hi = query.start.toordinal(), query.end.toordinal()
    for day, code, labels, n in buckets:
        if not lo <= day <= hi:
            continue
        if query.force is not None and labels[0] != query.force:
            continue
        if query.division is not None and labels[1] != query.division:
            continue
        measure = MEASURES[code]
        totals[measure] = (totals[measure] or 0) + n
        if dim is None:
            continue
        if dim in TIME_DIMENSIONS:
            key = period_of[day]
        elif dim == "division":
            key = (labels[0], labels[1])
        else:
            names = BY_CODE[code].labels
            if dim not in names:
                continue
            key = (_label_value(dim, labels[names.index(dim)]),)
        target = groups.get(key)
        if target is None:
            target = extra.setdefault(key, _empty_totals(dim))
        target[measure] = (target[measure] or 0) + n
    ordered = list(groups.items()) + sorted(extra.items(), key=lambda kv: str(kv[0]))
    out_groups: list[dict[str, Any]] = []
    for key, group_totals in ordered:
        if dim == "division":
            group: dict[str, Any] = {"key": {"force": key[0], "division": key[1]}}
        else:
            group = {"key": {dim: key[0]}}
        if key in spans:
            group["from"], group["to"] = (d.isoformat() for d in spans[key])
        group["totals"] = group_totals
        out_groups.append(group)
    return {
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "timezone": timezone,
        "force": query.force,
        "division": query.division,
        "group_by": dim,
        "totals": totals,
        "groups": out_groups,
    }


# --------------------------------------------------------------------------- the reader
class NotCaughtUp(Exception):
    """The reader could not reach the changelog's end offsets in time (answer 503)."""


def changelog_topic(settings: Settings) -> str:
    """The changelog topic of the stream app's ``counts`` table."""
    return changelogs.changelog_topic(settings, "counts")


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Connection options for aiokafka clients (TLS through an SSL context)."""
    from services.kafka_access import ssl_context

    opts: dict[str, Any] = dict(settings.kafka_client_options())
    opts.pop("ssl_cafile", None)  # kafka-python's option; aiokafka takes a context
    context = ssl_context(settings)
    if context is not None:
        opts["ssl_context"] = context
    return opts


def decode_key(raw: bytes | None) -> str | None:
    """A table key from its changelog bytes (Faust's JSON codec, or plain text)."""
    if raw is None:
        return None
    if raw[:1] == b'"':
        key = orjson.loads(raw)
        return key if isinstance(key, str) else None
    return raw.decode("utf-8", errors="replace")


def decode_value(raw: bytes | None) -> list[int] | None:
    """A table value ``[units, events, last_offset]`` from JSON (``None``: deleted)."""
    if raw is None:
        return None
    value = orjson.loads(raw)
    return value if isinstance(value, list) else None


class ChangelogReader:
    """The day buckets of every partition, for the period API.

    Partitions this worker writes (:meth:`own`, after every rebalance) are answered
    from its :class:`~streams.view.CountsView`, which mirrors every table write as it
    is made; the others are followed by reading the counts changelog into a
    :class:`DayBuckets`. (Reading back its own records meant parsing about three
    changelog records per event in the worker's loop and a second copy of their day
    buckets: docs/performance.md, change 12.) A partition this worker stops owning is read
    again from the beginning of its changelog, where its next owner writes. Run
    :meth:`run` as a background task and :meth:`catch_up` before answering. After a
    connection error it resumes where it stopped.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        partitions: int,
        *,
        view: CountsView | None = None,
        consumer_factory: Callable[..., Any] | None = None,
        poll_ms: int = 100,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.partitions = partitions  # the table's, as the source topics'
        self.view = CountsView() if view is None else view
        self.buckets = DayBuckets()  # the partitions read from the changelog
        self.poll_ms = poll_ms
        self.records = 0
        self._factory = consumer_factory
        self._consumer: Any = None
        self._all: list[Any] = []  # every partition of the changelog
        self._tps: list[Any] = []  # the ones read (not owned)
        self._next: dict[int, int] = {}  # partition -> next offset to apply
        self._owned: frozenset[int] = frozenset()
        self._reassign = asyncio.Event()
        self._progress: asyncio.Condition | None = None
        self._stopping = False

    def _condition(self) -> asyncio.Condition:
        if self._progress is None:
            self._progress = asyncio.Condition()
        return self._progress

    @property
    def owned(self) -> frozenset[int]:
        """The partitions answered from the view (this worker writes them)."""
        return self._owned

    def own(self, partitions: Iterable[int]) -> None:
        """From now on this worker alone writes ``partitions`` (after a rebalance).

        They are answered from the view (rebuilt from the recovered table); partitions
        it no longer owns are read again from the changelog's beginning.
        """
        owned = frozenset(partitions)
        lost = self._owned - owned
        self.buckets.drop_partitions(owned)
        for p in lost:
            self._next.pop(p, None)  # read again from the beginning (_assign)
        self._owned = owned
        self._reassign.set()
        log.info("periods_reader_owns", partitions=sorted(owned))

    def release(self) -> None:
        """Partitions revoked: read every partition from the changelog."""
        self.own(())

    def between(self, start: date, end: date) -> Iterator[Bucket]:
        """Every day bucket with ``start <= day <= end``, owned partitions from the view."""
        yield from self.buckets.between(start, end)
        lo, hi = start.toordinal(), end.toordinal()
        owned = self._owned
        for (code, p), part in self.view.series.items():
            if p not in owned or code not in MEASURES:
                continue
            for labels, series in part.items():
                inside = [(d, n) for d, n in series.days.items() if lo <= d <= hi]
                if inside:
                    names = tuple(labels.split(","))
                    for day, n in inside:
                        yield day, code, names, n

    async def _connect(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        factory = self._factory or AIOKafkaConsumer
        consumer = factory(
            **aiokafka_options(self.settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"{self.settings.topic_prefix}periods-reader",
            fetch_max_wait_ms=self.poll_ms,
            request_timeout_ms=int(self.settings.kafka_request_timeout_s * 1000),
        )
        await consumer.start()
        try:
            if self.topic not in await consumer.topics():
                raise LookupError("the counts changelog topic does not exist yet")
            numbers = consumer.partitions_for_topic(self.topic) or range(self.partitions)
            self._all = [TopicPartition(self.topic, p) for p in sorted(numbers)]
            self._consumer, self._tps = consumer, []
            await self._assign()
        except BaseException:
            self._consumer = None
            await consumer.stop()
            raise
        log.info("periods_reader_connected", topic=self.topic, partitions=len(self._all))

    async def _assign(self) -> None:
        """Read the partitions not owned, each from where it stopped (or the beginning)."""
        self._reassign.clear()
        consumer = self._consumer
        tps = [tp for tp in self._all if tp.partition not in self._owned]
        consumer.assign(tps)
        for tp in tps:
            if tp.partition in self._next:
                consumer.seek(tp, self._next[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)
        self._tps = tps

    async def run(self) -> None:
        """Read the changelog until cancelled or stopped (reconnecting after errors)."""
        backoff = 0.5
        try:
            while not self._stopping:
                try:
                    if self._consumer is None:
                        await self._connect()
                        backoff = 0.5
                    elif self._reassign.is_set():
                        await self._assign()
                    await self._poll()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - keep following; answers wait or 503
                    if self._stopping:
                        break  # stop() closed the consumer under a poll
                    log.warning("periods_reader_error", error=type(exc).__name__)
                    await self._close_consumer()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            await self._close_consumer()

    async def _poll(self) -> None:
        consumer, tps = self._consumer, self._tps
        if tps:
            batches = await consumer.getmany(timeout_ms=self.poll_ms, max_records=5000)
        else:  # every partition owned: nothing to read until the next rebalance
            batches = {}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reassign.wait(), self.poll_ms / 1000)
        if self._reassign.is_set():
            return  # fetched before a rebalance changed what is read: read again
        for records in batches.values():
            for record in records:
                raw = record.key
                # Only day keys matter, and "|d|" is in every day key's JSON.
                if raw is None or b"|d|" not in raw:
                    continue
                key = decode_key(raw)
                if key is not None:
                    self.buckets.apply(key, decode_value(record.value))
            self.records += len(records)
        for tp in tps:
            self._next[tp.partition] = await consumer.position(tp)
        cond = self._condition()
        async with cond:
            cond.notify_all()

    def _reached(self, ends: Mapping[Any, int]) -> bool:
        return all(
            tp.partition in self._owned or self._next.get(tp.partition, -1) >= n
            for tp, n in ends.items()
        )

    async def catch_up(self, timeout_s: float) -> None:
        """Wait until every record before the changelog's current end has been applied.

        Owned partitions are always up to date (their writes are mirrored as made).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._consumer is None:
            if loop.time() >= deadline:
                raise NotCaughtUp("the changelog reader is not connected to Kafka")
            await asyncio.sleep(0.05)
        consumer, cond = self._consumer, self._condition()
        tps = [tp for tp in self._all if tp.partition not in self._owned]
        if not tps:
            return
        try:
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                ends: dict[Any, int] = await consumer.end_offsets(tps)
                async with cond:
                    await cond.wait_for(lambda: self._reached(ends))
        except TimeoutError:
            raise NotCaughtUp(f"the changelog reader did not catch up in {timeout_s} s") from None
        except Exception as exc:  # noqa: BLE001 - Kafka errors: answer 503, not 500
            raise NotCaughtUp(f"end offsets unavailable ({type(exc).__name__})") from None

    async def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except Exception as exc:  # noqa: BLE001 - closing anyway
                log.warning("periods_reader_close_error", error=type(exc).__name__)

    async def stop(self) -> None:
        """Stop reading and close the consumer."""
        self._stopping = True
        self._reassign.set()
        await self._close_consumer()


# --------------------------------------------------------------------------- the gauge
PERIODS: Final = ("fy", "previous_fy", "previous_fy_to_date")


def fy_start(day: date) -> date:
    """First day (1 April) of the financial year that holds ``day``."""
    return date(day.year if day.month >= 4 else day.year - 1, 4, 1)


def period_bounds(today: date) -> dict[str, tuple[int, int]]:
    """Inclusive day-ordinal bounds of each of PERIODS on local date ``today``."""
    start = fy_start(today)
    prev = date(start.year - 1, 4, 1)
    try:
        same_day = today.replace(year=today.year - 1)
    except ValueError:  # 29 February
        same_day = today.replace(year=today.year - 1, day=28)
    return {
        "fy": (start.toordinal(), today.toordinal()),
        "previous_fy": (prev.toordinal(), start.toordinal() - 1),
        "previous_fy_to_date": (prev.toordinal(), same_day.toordinal()),
    }


class PeriodCollector(Collector):
    """``ops_period_units{measure, force, division, period}`` over the active partitions.

    Same contract as StreamCollector: each worker exports only the partitions it
    actively owns (sum across workers), nothing while ``active()`` returns None,
    and every configured force and division at 0 from the start.
    """

    def __init__(
        self,
        view: CountsView,
        forces: Mapping[str, Force],
        tz: ZoneInfo,
        active: Callable[[], set[tuple[str, int]] | None],
        clock: Callable[[], datetime],
    ) -> None:
        self.view = view
        self.tz = tz
        self.active = active
        self.clock = clock
        self.places = sorted(
            {join(labels[:2]) for f in FAMILIES for labels in all_label_sets(f, forces)}
        )
        self._labels = [
            (
                (measure, place, period),
                dict(
                    zip(
                        ("measure", "force", "division", "period"),
                        (measure, *place.split(","), period),
                        strict=True,
                    )
                ),
            )
            for measure in MEASURES.values()
            for place in self.places
            for period in PERIODS
        ]
        # Per (type code, partition): (spans, the view's days_version, units by place
        # and PERIODS). A partition is summed again only when one of its day buckets
        # changed or the date moved on.
        self._cache: dict[tuple[str, int], tuple[Any, int, dict[str, list[int]]]] = {}

    def collect(self) -> Iterator[Metric]:
        """One gauge family: units per measure, division and period."""
        active = self.active()
        if active is None:
            return
        bounds = period_bounds(self.clock().astimezone(self.tz).date())
        spans = tuple(bounds[period] for period in PERIODS)
        cache: dict[tuple[str, int], tuple[Any, int, dict[str, list[int]]]] = {}
        sums: dict[tuple[str, str, str], int] = {}
        for (code, p), part in self.view.series.items():
            if (code, p) not in active or code not in MEASURES:
                continue
            version = self.view.days_version.get((code, p), 0)
            cached = self._cache.get((code, p))
            if cached is not None and cached[0] == spans and cached[1] == version:
                by_place = cached[2]
            else:
                by_place = {}
                for labels, series in part.items():
                    per_period = _period_sums(series.days, spans)
                    if any(per_period):
                        place = join(labels.split(",")[:2])
                        acc = by_place.setdefault(place, [0] * len(PERIODS))
                        for i, units in enumerate(per_period):
                            acc[i] += units
            cache[(code, p)] = (spans, version, by_place)
            measure = MEASURES[code]
            for place, per_period_sums in by_place.items():
                for period, units in zip(PERIODS, per_period_sums, strict=True):
                    k = (measure, place, period)
                    sums[k] = sums.get(k, 0) + units
        self._cache = cache
        gauge = GaugeMetricFamily(
            "ops_period_units",
            "Units (warrants, persons arrested, children, referrals) by event date in "
            "this financial year to date, the previous one, and the previous one to the "
            "same date.",
            labels=["measure", "force", "division", "period"],
        )
        for k, label_dict in self._labels:  # built once: /metrics caches their text
            gauge.samples.append(Sample("ops_period_units", label_dict, sums.get(k, 0)))
        yield gauge


def _period_sums(days: Mapping[int, int], spans: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """Units of the day buckets inside each inclusive (lo, hi) day-ordinal span."""
    out = [0] * len(spans)
    for day, units in days.items():
        for i, (lo, hi) in enumerate(spans):
            if lo <= day <= hi:
                out[i] += units
    return tuple(out)
