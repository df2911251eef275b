"""Shared parts of the reliability suite: sizes, forces, publishing, settling, checking.

Every scenario publishes events whose ground truth is computed independently
(tests/stream/truth.py), injects its faults, waits until every message on the
source topics is accounted for, then compares every counter (and window gauge)
with the truth, by every label.

Sizes are module constants, scaled by ``OPS_RELIABILITY_SCALE`` (default 1): raise
them when the worker gets faster, never below the issue's minimums (20,000 events
and 5 kill -9 in the crash scenario).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import structlog
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from opsmetrics.settings import Settings
from services.contract.events import (
    ORIGINS,
    REFERRERS,
    RISKS,
    ArrestMade,
    ReferralReceived,
    SafeguardingAction,
    WarrantExecuted,
)
from services.publisher import Publisher, PublishError
from services.simulator import Simulator
from services.topics import KafkaUnavailable, event_topics
from tests.stream import truth
from tests.stream.test_stream import messages_done
from tests.workers import Samples, Worker, sum_over

log = structlog.get_logger(__name__)

SCALE: Final = float(os.environ.get("OPS_RELIABILITY_SCALE", "1"))
#: Seed of every random choice (kill moments, orders); printed so a failure can be replayed.
SEED: Final = int(os.environ.get("OPS_RELIABILITY_SEED", str(int(time.time()) % 100_000)))

CRASH_EVENTS: Final = max(20_000, int(20_000 * SCALE))  # scenario 1 (issue minimum 20,000)
CRASH_KILLS: Final = max(5, int(5 * SCALE))  # scenario 1 (issue minimum 5)
#: Events a second the crash scenario's publisher aims at (spreads the kills over the flow).
CRASH_PUBLISH_RATE: Final = 200.0 * SCALE
BROKER_EVENTS: Final = int(3_000 * SCALE)  # scenario 2
REBALANCE_EVENTS: Final = int(3_000 * SCALE)  # scenario 3 (two phases)
DUPLICATE_EVENTS: Final = int(1_500 * SCALE)  # scenario 4 (unique events; 2-3 copies each)
LATE_EVENTS: Final = int(1_500 * SCALE)  # scenario 5
HOSTILE_BROKER_SAMPLE: Final = int(500 * SCALE)  # scenario 6 through the real broker
#: Hypothesis examples per fuzz test (scenario 6); OPS_FUZZ_EXAMPLES for longer runs.
FUZZ_EXAMPLES: Final = int(os.environ.get("OPS_FUZZ_EXAMPLES", "10000"))

PARTITIONS: Final = 6
#: Faust reads these from the environment: a killed worker's group membership expires
#: after 10 s instead of 60 s, so a restart does not wait a minute for a rebalance.
FAST_GROUP_ENV: Final = {"BROKER_SESSION_TIMEOUT": "10", "BROKER_HEARTBEAT_INTERVAL": "1"}
SETTLE_TIMEOUT_S: Final = 600.0

#: Three forces with dense rates: many label values, thousands of events a month.
FORCES: Final[dict[str, tuple[str, list[str]]]] = {
    "lancashire": ("Lancashire Constabulary", ["east", "south", "west"]),
    # Division names differ across forces: the simulator's event ids do not name the
    # force (see test_simulator_ids.py), so shared names would collide.
    "cumbria": ("Cumbria Constabulary", ["north", "south-lakes"]),
    "merseyside": ("Merseyside Police", ["liverpool", "wirral", "sefton-knowsley"]),
}
YEARLY: Final = {
    "referrals_received": 40_000.0,
    "warrants_executed": 8_000.0,
    "arrests": 9_000.0,
    "children_safeguarded": 7_000.0,
}


def write_forces(
    path: Path,
    forces: dict[str, tuple[str, list[str]]] | None = None,
    rates: Mapping[str, float] = YEARLY,
) -> Path:
    """Write a forces TOML (``slug -> (name, divisions)``) with dense test ``rates``."""
    lines: list[str] = []
    for slug, (name, divisions) in (forces or FORCES).items():
        lines += [
            f"[forces.{slug}]",
            f'name = "{name}"',
            "divisions = [" + ", ".join(f'"{d}"' for d in divisions) + "]",
            f"[forces.{slug}.rates]",
            *(f"{k} = {v}" for k, v in rates.items()),
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def recent_events(settings: Settings, n: int, seed: int, days: float = 40.0) -> list[Any]:
    """``n`` simulated events ending two minutes ago (time order), over about ``days``."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    sim = Simulator(settings.forces, seed=seed, tz_name=settings.timezone)
    span = timedelta(days=days)
    while True:
        events = list(sim.generate(end - span, end))
        if len(events) >= n:
            return events[-n:]
        span *= 2


def divisions(settings: Settings) -> dict[str, list[str]]:
    """Configured force -> its divisions."""
    return {slug: list(f.divisions) for slug, f in settings.forces.items()}


def make_event(
    rng: random.Random,
    forces: Mapping[str, Sequence[str]],
    event_id: str,
    at: datetime,
    **fields: Any,
) -> Any:
    """A random valid event (any type, force, division and labels) at ``at``."""
    force = rng.choice(sorted(forces))
    common: dict[str, Any] = {
        "version": 1,
        "event_id": event_id,
        "occurred_at": at,
        "force": force,
        "division": rng.choice(list(forces[force])),
        "source": "reliability",
    }
    kind = rng.choice(("w", "a", "s", "r"))
    if kind == "w":
        model: Any = WarrantExecuted
        common |= {"type": "warrant.executed", "origin": rng.choice(ORIGINS)}
    elif kind == "a":
        model = ArrestMade
        common |= {
            "type": "arrest.made",
            "persons": rng.choice((1, 1, 1, 2, 3, 50)),
            "origin": rng.choice(ORIGINS),
            "previously_known": rng.random() < 0.3,
        }
    elif kind == "s":
        model = SafeguardingAction
        common |= {"type": "safeguarding.action", "children": rng.choice((1, 1, 2, 4, 100))}
    else:
        model = ReferralReceived
        common |= {
            "type": "referral.received",
            "referrer": rng.choice(REFERRERS),
            "risk": rng.choice(RISKS),
        }
    return model(**(common | fields))


# --------------------------------------------------------------------------- publishing
@dataclass
class PublishStats:
    """What a publishing loop did."""

    batches: int = 0
    messages: int = 0  # messages handed to a producer (a retried batch counts again)
    retries: int = 0
    errors: list[str] = field(default_factory=list)


def publish_with_retry(
    settings: Settings,
    events: Sequence[Any],
    *,
    batch: int = 200,
    rate: float | None = None,
    client_id: str = "reliability-publisher",
    deadline_s: float = 600.0,
    stats: PublishStats | None = None,
) -> PublishStats:
    """Publish every event, retrying a batch on PublishError/KafkaUnavailable with backoff.

    A batch that failed is sent again whole by a new producer: some of its events may
    now be in Kafka twice (the stream de-duplicates them), none is lost. ``rate``
    (events a second) paces the loop.
    """
    stats = stats or PublishStats()
    started = time.monotonic()
    pub: Publisher | None = None
    backoff = 0.2
    i = 0
    try:
        while i < len(events):
            if time.monotonic() - started > deadline_s:
                raise TimeoutError(f"publishing did not finish in {deadline_s} s: {stats}")
            chunk = events[i : i + batch]
            try:
                if pub is None:
                    pub = Publisher(settings, client_id=client_id)
                stats.messages += len(chunk)
                pub.publish_many(chunk)
            except (PublishError, KafkaUnavailable) as exc:
                stats.retries += 1
                stats.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                log.info("publish_retry", error=type(exc).__name__, backoff_s=backoff)
                if pub is not None:
                    with contextlib.suppress(Exception):
                        pub.close(timeout_s=1.0)
                    pub = None
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            stats.batches += 1
            i += len(chunk)
            if rate:
                ahead = started + i / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
    finally:
        if pub is not None:
            pub.close()
    return stats


class Background(threading.Thread):
    """Runs a function in a daemon thread and keeps its result or exception."""

    def __init__(self, target: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(daemon=True)
        self._call = (target, args, kwargs)
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        target, args, kwargs = self._call
        try:
            self.result = target(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the caller in join_ok
            self.error = exc

    def join_ok(self, timeout_s: float) -> Any:
        """Wait for the thread; raise what it raised; fail if it is still running."""
        self.join(timeout_s)
        if self.is_alive():
            raise AssertionError(f"background task still running after {timeout_s} s")
        if self.error is not None:
            raise self.error
        return self.result


# --------------------------------------------------------------------------- the topics
def end_offsets(settings: Settings, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """End offset of every partition of ``topics``."""
    consumer = KafkaConsumer(**settings.kafka_client_options(), group_id=None)
    try:
        tps = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t))
        ]
        return dict(consumer.end_offsets(tps))
    finally:
        consumer.close()


def source_messages(settings: Settings) -> int:
    """Messages on the four event topics (offsets start at 0 and nothing expires)."""
    return sum(end_offsets(settings, event_topics(settings)).values())


# --------------------------------------------------------------------------- settling
@dataclass
class Settled:
    """The scrapes of the live workers once every message was accounted for (or not)."""

    samples: list[Samples]
    done: int
    expected: int
    waited_s: float

    @property
    def complete(self) -> bool:
        return self.done == self.expected


def settle(
    workers: Sequence[Worker],
    expected: int,
    timeout_s: float = SETTLE_TIMEOUT_S,
    *,
    rerouted: int = 0,
) -> Settled:
    """Wait until ``expected`` messages (minus ``rerouted``) are counted, duplicate or rejected.

    Returns the last scrapes even when time runs out, so the scenario can record what
    it saw before it asserts.
    """
    want = expected - rerouted
    started = time.monotonic()
    deadline = started + timeout_s
    samples: list[Samples] = []
    done = -1
    while True:
        try:
            samples = [w.metrics() for w in workers]
            done = messages_done(samples)
            if done >= want and all(w.healthy() for w in workers):
                samples = [w.metrics() for w in workers]
                done = messages_done(samples)
                if done >= want:
                    break
        except OSError:
            pass  # a worker still starting
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return Settled(samples, done, want, time.monotonic() - started)


# --------------------------------------------------------------------------- checking
@dataclass
class Tally:
    """The comparison of the exported counters with the truth."""

    expected_events: dict[str, int]
    counted_events: dict[str, int]
    label_diffs: dict[str, dict[tuple[str, ...], tuple[int, float]]]  # metric -> (want, got)

    @property
    def lost(self) -> int:
        """Events the truth has and ``ops_events_processed_total`` misses, by type."""
        want, got = self.expected_events, self.counted_events
        return sum(max(0, n - got.get(t, 0)) for t, n in want.items())

    @property
    def twice(self) -> int:
        """Events ``ops_events_processed_total`` has beyond the truth, by type."""
        want, got = self.expected_events, self.counted_events
        return sum(max(0, n - want.get(t, 0)) for t, n in got.items())

    @property
    def label_sets_differing(self) -> int:
        """Label sets of the contract counters whose units differ from the truth."""
        return sum(len(d) for d in self.label_diffs.values())

    def assert_exact(self) -> None:
        assert self.counted_events == self.expected_events, (
            f"events by type: counted {self.counted_events}, expected {self.expected_events}"
        )
        assert not any(self.label_diffs.values()), f"label sets that differ: {self.label_diffs}"


def expected_by_type(events: Iterable[Any]) -> dict[str, int]:
    """Unique events per type."""
    out: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    for e in events:
        if e.event_id not in seen:
            seen.add(e.event_id)
            out[e.type] += 1
    return dict(out)


def tally(samples: list[Samples], events: Sequence[Any]) -> Tally:
    """Compare every counter, by every label, with the truth of ``events``."""
    expected = truth.totals(events)
    diffs: dict[str, dict[tuple[str, ...], tuple[int, float]]] = {}
    for metric, names in truth.COUNTER.values():
        got = {k: v for k, v in sum_over(samples, metric, names).items() if v}
        want = dict(expected.get(metric, {}))
        diffs[metric] = {
            k: (want.get(k, 0), got.get(k, 0.0))
            for k in set(got) | set(want)
            if want.get(k, 0) != got.get(k, 0.0)
        }
    processed = sum_over(samples, "ops_events_processed_total", ["type"])
    counted = {k[0]: int(v) for k, v in processed.items() if v}
    return Tally(expected_by_type(events), counted, diffs)


def partition_owners(samples: list[Samples]) -> dict[int, int]:
    """Source partition -> how many of these workers export it."""
    owners: dict[int, int] = defaultdict(int)
    for s in samples:
        for labels, v in s.get("ops_worker_partition_active", {}).items():
            if v:
                owners[int(dict(labels)["partition"])] += 1
    return dict(owners)


def assert_each_partition_once(samples: list[Samples], partitions: int = PARTITIONS) -> None:
    """Every source partition's counts are exported by exactly one live worker."""
    owners = partition_owners(samples)
    want = dict.fromkeys(range(partitions), 1)
    assert owners == want, f"partition -> number of workers exporting it: {owners}"


def read_all(settings: Settings, topic: str) -> list[Any]:
    """Every record of ``topic`` from the beginning (no consumer group)."""
    consumer = KafkaConsumer(
        **settings.kafka_client_options(), group_id=None, enable_auto_commit=False
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        ends = consumer.end_offsets(tps)
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def diagnose(settings: Settings, samples: list[Samples]) -> dict[str, Any]:
    """Why messages are unaccounted for: which source messages have no first sighting.

    A counted event always records its first sighting in the ``seen`` table, so a
    source message whose event id was never sighted was skipped (or is still waiting).
    Reports each with the consumer group's committed offset and the workers' lag.
    """
    from kafka import KafkaAdminClient

    from streams.labels import BY_TYPE

    codes = {name: BY_TYPE[etype].code for name, etype in event_topics(settings).items()}
    sighted: set[str] = set()
    for record in read_all(settings, f"{settings.topic_prefix}stream-seen-changelog"):
        if record.value is not None:
            sighted.update(entry[0] for entry in json.loads(record.value))
    missing: list[dict[str, Any]] = []
    for topic in codes:
        for r in read_all(settings, topic):
            if r.key is None or r.key.decode(errors="replace") not in sighted:
                missing.append({"topic": topic, "partition": r.partition, "offset": r.offset})
    admin = KafkaAdminClient(**settings.kafka_client_options())
    try:
        committed = admin.list_consumer_group_offsets(f"{settings.topic_prefix}stream")
    finally:
        admin.close()
    for m in missing:
        meta = committed.get(TopicPartition(m["topic"], m["partition"]))
        m["group_committed"] = meta.offset if meta is not None else None
    lag = {
        f"{dict(k)['topic']}/{dict(k)['partition']}": v
        for s in samples
        for k, v in s.get("ops_consumer_lag", {}).items()
        if v
    }
    return {"unsighted_messages": missing[:20], "unsighted": len(missing), "lag": lag}


def rng_for(name: str) -> random.Random:
    """A random generator for one scenario, reproducible with OPS_RELIABILITY_SEED."""
    return random.Random(f"{SEED}:{name}")
