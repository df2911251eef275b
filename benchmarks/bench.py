"""`make bench`: the stream worker side by side with a plain consumer and Quix Streams.

Over one set of contract topics holding BENCH_EVENTS events (default 1,000,000: the
simulator's mix over 5 forces with 10 divisions, event times spread over 30 days,
0.5% duplicates, 0.05% junk), each contestant reads everything from the beginning:

1. ``limit``: a plain aiokafka consumer that parses the JSON and counts in a dict;
2. ``worker``: one `opsmetrics worker` (classify, de-duplicate, bucket, changelogs);
3. ``quix-count``: Quix Streams counting types its natural way (json deserializer);
   ``quix-full``: Quix Streams doing our work: the same classifier, de-duplication in
   its RocksDB state (with changelog), buckets counted in a dict;
   ``quix-durable``: the same with the counts durable as ours are: each count key's
   total in Quix Streams' state (``group_by`` the key, then a stateful update, as its
   docs count "sales per customer");

then, on a fresh worker: publish-to-visible latency at 1,000 events/s, /metrics render
time and the worker's peak RSS after the million. Throughputs are medians of
BENCH_RUNS runs (default 3). Starts its own broker unless OPS_KAFKA_BOOTSTRAP is set.
Writes benchmarks/results/bench.json and prints a table.

Usage: .venv/bin/python -m benchmarks.bench          (or: make bench)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from opsmetrics.settings import Settings
from services.contract.events import TOPIC_OF, EventType
from services.publisher import encode
from services.simulator import MEAN_CHILDREN, MEAN_PERSONS, Simulator
from services.topics import ensure_topics, event_topics
from stack.kafka import KafkaBroker, free_port
from tests.workers import Samples, Worker, scrape, wait_for

HERE = Path(__file__).parent
FORCES_FILE = HERE / "forces.toml"
RESULTS = HERE / "results" / "bench.json"
DUPLICATE_SHARE = 0.005
JUNK_SHARE = 0.0005
PARTITIONS = 6
LATENCY_RATE = 1000  # events/s
LATENCY_SECONDS = 20
# The samples the latency poller sums (a regular expression: the text is ~2 MB a scrape).
PROCESSED = re.compile(rb"^ops_events_processed_total\{[^}]*\} (\S+)$", re.MULTILINE)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# --- the events ---------------------------------------------------------------------


def scaled_forces(settings: Settings, total: int) -> dict[str, Any]:
    """The bench forces with rates scaled so 30 days hold about ``total`` events."""
    forces = settings.forces
    per_year = sum(
        f.rates.referrals_received
        + f.rates.warrants_executed
        + f.rates.arrests / MEAN_PERSONS
        + f.rates.children_safeguarded / MEAN_CHILDREN
        for f in forces.values()
    )
    factor = total / (per_year * 30 / 365.25)
    out = {}
    for slug, f in forces.items():
        r = f.rates
        rates = r.model_copy(
            update={
                "referrals_received": r.referrals_received * factor,
                "warrants_executed": r.warrants_executed * factor,
                "arrests": r.arrests * factor,
                "children_safeguarded": r.children_safeguarded * factor,
            }
        )
        out[slug] = f.model_copy(update={"rates": rates})
    return out


def make_events(settings: Settings, total: int) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) for ``total`` messages: simulated events, duplicates, junk."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    # Rates for 2% more than needed, trimmed below: Poisson draws for exactly ``total``
    # fall short about half the time (999,989 on 2026-11-28), and the bench waits for
    # every one of ``total`` offsets to be committed.
    sim = Simulator(scaled_forces(settings, int(total * 1.02)), seed=1)
    rng = random.Random(1)
    out: list[tuple[str, bytes, bytes]] = []
    for event in sim.generate(end - timedelta(days=30), end):
        topic = settings.topic(TOPIC_OF[EventType(event.type)])
        out.append((topic, event.event_id.encode(), encode(event)))
    rng.shuffle(out)  # systems publish late and out of order
    n_dup = int(total * DUPLICATE_SHARE)
    n_junk = int(total * JUNK_SHARE)
    del out[total - n_dup - n_junk :]
    dups = rng.sample(out, n_dup)
    junk = [
        (topic, f"junk-{i:08d}".encode(), b'{"version":1,"event_id":' if i % 2 else b"[1,2]")
        for i, (topic, _, _) in enumerate(rng.sample(out, n_junk))
    ]
    out.extend(dups + junk)
    if len(out) != total:
        raise SystemExit(f"generated {len(out)} messages, not {total}")
    return out


async def _publish(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks="all"
    )
    await producer.start()
    try:
        for start in range(0, len(messages), 20_000):
            futures = [
                await producer.send(topic, value, key=key)
                for topic, key, value in messages[start : start + 20_000]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        tps = [
            TopicPartition(t, p)
            for t in event_topics(settings)
            for p in consumer.partitions_for_topic(t) or []
        ]
        return {(tp.topic, tp.partition): o for tp, o in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def bench_topics(bootstrap: str, total: int) -> Settings:
    """The bench's settings for ``total`` events on ``bootstrap``, its topics filled."""
    settings = Settings(
        kafka_bootstrap=bootstrap,
        topic_prefix=f"bench{total}.",
        forces_file=FORCES_FILE,
        topic_partitions=PARTITIONS,
    )
    prepare_topics(settings, total)
    return settings


def prepare_topics(settings: Settings, total: int) -> None:
    """Create and fill the topics, unless they already hold exactly ``total`` messages."""
    ensure_topics(settings)
    held = sum(end_offsets(settings).values())
    if held == total:
        print(f"topics {settings.topic_prefix}* already hold {total} messages", flush=True)
        return
    if held:
        raise SystemExit(f"topics {settings.topic_prefix}* hold {held} messages, not {total}")
    t = time.perf_counter()
    messages = make_events(settings, total)
    print(f"generated {len(messages)} messages in {time.perf_counter() - t:.0f} s", flush=True)
    t = time.perf_counter()
    asyncio.run(_publish(settings.kafka_bootstrap, messages))
    print(f"published in {time.perf_counter() - t:.0f} s", flush=True)


# --- contestants in their own processes ------------------------------------------------


async def _limit(bootstrap: str, topics: list[str], total: int) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        counts: dict[str, int] = defaultdict(int)
        n = 0
        first = 0.0
        while n < total:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if not first and batches:
                first = time.perf_counter()
            for records in batches.values():
                for record in records:
                    try:
                        obj = orjson.loads(record.value)
                        counts[obj.get("type", "?") if isinstance(obj, dict) else "?"] += 1
                    except orjson.JSONDecodeError:
                        counts["?"] += 1
                n += len(records)
        seconds = time.perf_counter() - first
    finally:
        await consumer.stop()
    return {"events": n, "seconds": seconds, "counts": dict(counts)}


def run_limit(bootstrap: str, prefix: str, total: int) -> dict[str, Any]:
    """Contestant 1: read, parse, count in a dict."""
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix)
    return asyncio.run(_limit(bootstrap, list(event_topics(settings)), total))


def run_quix(bootstrap: str, prefix: str, total: int, mode: str) -> dict[str, Any]:
    """Contestant 3: Quix Streams, counting (``count``), doing our work with the counts in a
    dict (``full``), or with the counts durable in its state (``durable``)."""
    import logging

    from quixstreams import Application, State

    from services.contract.classify import Accepted, Classifier
    from streams.counter import bucket_keys
    from streams.labels import BY_TYPE, join, label_values, units

    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, forces_file=FORCES_FILE)
    state_dir = tempfile.mkdtemp(prefix="quix-bench-")
    # n: source messages handled; rows: count rows emitted (durable), added: rows added
    seen = {"n": 0, "first": 0.0, "last": 0.0, "errors": 0, "rows": 0, "added": 0}
    app: Any = None

    def tick() -> None:
        seen["n"] += 1
        if seen["n"] == 1:
            seen["first"] = time.perf_counter()
        finish()

    def finish() -> None:
        if seen["n"] >= total and seen["added"] >= seen["rows"]:
            seen["last"] = time.perf_counter()
            app.stop()

    def on_error(exc: Exception, row: Any, logger: logging.Logger) -> bool:
        seen["errors"] += 1
        tick()
        return True

    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
        on_processing_error=on_error,
        on_consumer_error=on_error,
    )
    counts: dict[Any, int] = defaultdict(int)
    classifier = Classifier.for_prefix(
        prefix, {slug: f.divisions for slug, f in settings.forces.items()}
    )
    tz = settings.tz
    for name, etype in event_topics(settings).items():
        if mode == "count":
            topic = app.topic(name, value_deserializer="json", key_deserializer="bytes")
            sdf = app.dataframe(topic)

            def count(value: Any) -> None:
                counts[value.get("type") if isinstance(value, dict) else "?"] += 1
                tick()

            sdf.update(count)
        elif mode == "full":
            topic = app.topic(name, value_deserializer="bytes", key_deserializer="bytes")
            sdf = app.dataframe(topic)
            code = BY_TYPE[etype].code

            def work(
                value: bytes, key: Any, stamp: int, headers: Any, state: State[Any, Any]
            ) -> None:
                now = datetime.fromtimestamp(stamp / 1000, UTC)
                outcome = classifier.classify(name, value, now=now)  # noqa: B023
                if not isinstance(outcome, Accepted):
                    counts["rejected"] += 1
                elif state.get("seen"):
                    counts["duplicate"] += 1
                else:
                    state.set("seen", 1)
                    event = outcome.event
                    labels = join(label_values(event))
                    n = units(event)
                    for k in bucket_keys(code, 0, labels, event.occurred_at, now, tz):  # noqa: B023
                        counts[k] += n
                tick()

            sdf.update(work, stateful=True, metadata=True)
        else:
            # Durable counts, Quix Streams' natural way (its group_by docs: "sales per
            # customer"): each message becomes rows (count key, units); group_by re-keys
            # them through a repartition topic, and the count lives in the state of its
            # key (RocksDB, with a changelog), as our worker's counts live in its tables.
            topic = app.topic(name, value_deserializer="bytes", key_deserializer="bytes")
            code = BY_TYPE[etype].code

            def rows(
                value: bytes, key: Any, stamp: int, headers: Any, state: State[Any, Any]
            ) -> list[list[Any]]:
                now = datetime.fromtimestamp(stamp / 1000, UTC)
                outcome = classifier.classify(name, value, now=now)  # noqa: B023
                if not isinstance(outcome, Accepted):
                    out = [[f"x|{code}|{outcome.reason.value}", 1]]  # noqa: B023
                elif state.get("seen"):
                    out = [[f"d|{code}", 1]]  # noqa: B023
                else:
                    state.set("seen", 1)
                    event = outcome.event
                    labels = join(label_values(event))
                    n = units(event)
                    keys = bucket_keys(code, 0, labels, event.occurred_at, now, tz)  # noqa: B023
                    out = [[k, n] for k in keys]
                seen["rows"] += len(out)
                tick()
                return out

            def add(row: list[Any], state: State[Any, Any]) -> None:
                state.set("n", state.get("n", 0) + row[1])
                seen["added"] += 1
                finish()

            sdf = app.dataframe(topic).apply(rows, stateful=True, metadata=True, expand=True)
            sdf = sdf.group_by(lambda row: row[0], name=f"bench-counts-{code}")
            sdf.update(add, stateful=True)
    app.run()
    return {
        "events": seen["n"],
        "seconds": seen["last"] - seen["first"],
        "errors": seen["errors"],
        "keys": len(counts),
        "rows": seen["rows"],
        "added": seen["added"],
    }


def in_subprocess(kind: str, bootstrap: str, prefix: str, total: int) -> dict[str, Any]:
    """Run one contestant in a fresh interpreter; its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", kind, bootstrap, prefix, str(total)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["events"] != total:
        raise RuntimeError(f"{kind} saw {result['events']} of {total} messages")
    if result.get("added", 0) != result.get("rows", 0):
        raise RuntimeError(f"{kind} added {result['added']} of {result['rows']} count rows")
    result["rate"] = total / result["seconds"]
    return result


# --- the worker ------------------------------------------------------------------------


def reset_worker_state(settings: Settings) -> None:
    """Delete the worker's consumer group and changelogs so it starts from the beginning."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    app_id = f"{settings.topic_prefix}stream"
    try:
        deadline = time.monotonic() + 120
        while committed_total(settings):  # a group with live members cannot be deleted yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"consumer group {app_id} could not be deleted")
            with contextlib.suppress(Exception):
                admin.delete_groups([app_id])
            time.sleep(1)
        doomed = [t for t in admin.list_topics() if t.startswith(f"{app_id}-")]
        if doomed:
            admin.delete_topics(doomed)
        deadline = time.monotonic() + 60
        while set(doomed) & set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics {doomed} not deleted within 60 s")
            time.sleep(0.5)
    finally:
        admin.close()


def committed_total(settings: Settings) -> int:
    """Offsets the worker's consumer group has committed on the event topics."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.topic_prefix}stream",
        enable_auto_commit=False,
    )
    try:
        tps = [TopicPartition(t, p) for t in event_topics(settings) for p in range(PARTITIONS)]
        return sum(consumer.committed(tp) or 0 for tp in tps)
    finally:
        consumer.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def render_ms(url: str, times: int = 20) -> float:
    out = []
    for _ in range(times):
        t = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - loopback
            resp.read()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def counted(samples: dict[str, Any]) -> int:
    return int(
        sum(
            sum(samples.get(name, {}).values())
            for name in (
                "ops_events_processed_total",
                "ops_events_duplicate_total",
                "ops_events_rejected_total",
            )
        )
    )


@contextlib.contextmanager
def replaying(settings: Settings, tmp: Path, env: dict[str, str]) -> Iterator[Worker]:
    """A fresh worker reading the topics from the beginning (healthy); stopped on exit."""
    with replaying_since(settings, tmp, env) as (worker, _):
        yield worker


@contextlib.contextmanager
def replaying_since(
    settings: Settings, tmp: Path, env: dict[str, str]
) -> Iterator[tuple[Worker, float]]:
    """:func:`replaying`, and the last ``time.time()`` the worker was seen not healthy yet.

    It reads nothing before it is healthy (Faust resumes the partitions after the
    rebalance that makes it so), so its counting started after that instant; checked
    every 20 ms.
    """
    reset_worker_state(settings)
    worker = Worker(settings, free_port(), tmp / f"worker-{uuid.uuid4().hex[:6]}.log", env=env)
    worker.start()
    try:
        not_yet = time.time()
        deadline = time.monotonic() + 180
        while not worker.healthy():
            if worker.proc is None or worker.proc.poll() is not None:
                raise RuntimeError(f"the worker exited before it was healthy: see {worker.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker was not healthy within 180 s: see {worker.log}")
            not_yet = time.time()
            time.sleep(0.02)
        yield worker, not_yet
    finally:
        worker.stop()


def wait_committed(settings: Settings, total: int) -> float:
    """Seconds until the worker group has committed ``total`` offsets (an hour at most)."""
    started = time.perf_counter()
    deadline = time.monotonic() + 3600
    while committed_total(settings) < total:
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not finish within an hour")
        time.sleep(0.2)
    return time.perf_counter() - started


def all_counted(url: str, total: int) -> Samples | None:
    """The scrape of ``url`` if it accounts for ``total`` messages, else None."""
    samples = scrape(url)
    return samples if counted(samples) == total else None


def run_worker(settings: Settings, total: int, tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    """Contestant 2: one worker from the beginning; rate, render time, peak RSS."""
    with replaying_since(settings, tmp, env) as (worker, not_yet):
        seconds = wait_committed(settings, total)
        samples = wait_for(
            lambda: all_counted(f"{worker.url}/metrics", total),
            timeout_s=30,
            what=f"/metrics to account for all {total} messages",
        )
        assert samples is not None  # wait_for returns a truthy value or fails
        # As Quix Streams and the limit are timed, to the last message counted: the time
        # the worker counted its last batch, from before it could count anything.
        counting = max(samples["ops_last_event_timestamp_seconds"].values()) - not_yet
        assert worker.proc is not None
        return {
            "events": total,
            "seconds": seconds,
            "rate": total / seconds,
            "counting_seconds": counting,
            "counting_rate": total / counting,
            "render_ms": render_ms(f"{worker.url}/metrics"),
            "peak_rss_mb": peak_rss_mb(worker.proc.pid),
            "processed": int(sum(samples["ops_events_processed_total"].values())),
            "duplicates": int(sum(samples["ops_events_duplicate_total"].values())),
            "rejected": int(sum(samples["ops_events_rejected_total"].values())),
        }


# --- latency -----------------------------------------------------------------------------


def run_latency(base: Settings, tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    """Publish at LATENCY_RATE events/s; p50/p99 from publish to counted in /metrics."""
    settings = base.model_copy(update={"topic_prefix": f"benchlat{uuid.uuid4().hex[:6]}."})
    ensure_topics(settings)
    worker = Worker(settings, free_port(), tmp / "latency-worker.log", env=env)
    worker.start().wait_healthy(timeout_s=180)
    url = f"{worker.url}/metrics"
    forces = settings.forces
    slots = [(f, d) for f, force in forces.items() for d in force.divisions]
    n = LATENCY_RATE * LATENCY_SECONDS
    sent_at: list[float] = [0.0] * n
    sent_wall: list[float] = [0.0] * n  # time.time() of each send: compared with the broker's
    event_ids: list[str] = [""] * n
    seen: list[tuple[float, int]] = []
    done = threading.Event()
    # Pause between scrapes (each scrape renders ~19,000 samples on the worker's event
    # loop: a short gap measures finely but loads the worker far beyond Prometheus).
    # 0.1 s: ten scrapes a second, 150 times Prometheus's rate, and 100 ms resolution
    # (an event counts as visible only when the scrape that shows it has arrived).
    scrape_gap = float(os.environ.get("BENCH_LATENCY_SCRAPE_S", "0.1"))

    def poll() -> None:
        while not done.is_set():
            with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback
                text = resp.read()
            now = time.perf_counter()
            total = sum(float(v) for v in PROCESSED.findall(text))
            seen.append((now, int(total)))
            time.sleep(scrape_gap)

    async def publish() -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            t0 = time.perf_counter()
            for i in range(n):
                target = t0 + i / LATENCY_RATE
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                force, division = slots[i % len(slots)]
                event_id = f"lat-{uuid.uuid4().hex}"
                value = orjson.dumps(
                    {
                        "version": 1,
                        "event_id": event_id,
                        "type": "referral.received",
                        "occurred_at": datetime.now(UTC).isoformat(),
                        "force": force,
                        "division": division,
                        "source": "latency-bench",
                        "referrer": "nca",
                        "risk": "low",
                    }
                )
                event_ids[i] = event_id
                sent_wall[i] = time.time()
                sent_at[i] = time.perf_counter()
                await producer.send(settings.topic("referrals"), value, key=event_id.encode())
            await producer.flush()
        finally:
            await producer.stop()

    poller = threading.Thread(target=poll, daemon=True)
    try:
        poller.start()
        asyncio.run(publish())
        deadline = time.monotonic() + 120
        while not seen or seen[-1][1] < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {seen[-1][1] if seen else 0} of {n} became visible")
            time.sleep(0.05)
        done.set()
        poller.join()
        render = render_ms(url)
    finally:
        done.set()
        worker.stop()
    # Event i is visible at the first scrape counting more than i events (order of
    # publication; the worker's order across partitions differs slightly).
    latencies = []
    j = 0
    for i in range(n):
        while seen[j][1] <= i:
            j += 1
        latencies.append((seen[j][0] - sent_at[i]) * 1000)
    q = statistics.quantiles(latencies, n=100)
    # Where the time went: publish -> appended by the broker (its LogAppendTime), and the
    # rest, appended -> visible in /metrics (the worker, and the scrape gap).
    appended = asyncio.run(append_times(settings, set(event_ids)))
    to_broker = [appended[e][1] - sent_wall[i] * 1000 for i, e in enumerate(event_ids)]
    qb = statistics.quantiles(to_broker, n=100)
    qw = statistics.quantiles([t - b for t, b in zip(latencies, to_broker, strict=True)], n=100)
    slowest = sorted(range(n), key=lambda i: -latencies[i])[: n // 100]
    return {
        "events": n,
        "rate": LATENCY_RATE,
        "p50_ms": q[49],
        "p99_ms": q[98],
        "to_broker_p50_ms": qb[49],
        "to_broker_p99_ms": qb[98],
        "after_broker_p50_ms": qw[49],
        "after_broker_p99_ms": qw[98],
        # the slowest 1%: publish second, partition, ms to the broker, ms after it
        "slowest": [
            (
                round(sent_at[i] - sent_at[0], 2),
                appended[event_ids[i]][0],
                round(to_broker[i]),
                round(latencies[i] - to_broker[i]),
            )
            for i in slowest[:: max(1, len(slowest) // 10)]
        ],
        "render_ms": render,
    }


async def append_times(settings: Settings, wanted: set[str]) -> dict[str, tuple[int, float]]:
    """Event id -> (partition, broker append time in ms) of ``wanted`` on the referrals topic."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        settings.topic("referrals"),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, tuple[int, float]] = {}
    try:
        deadline = time.monotonic() + 60
        while len(found) < len(wanted) and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for r in records:
                    if r.key is not None and r.key.decode() in wanted:
                        found[r.key.decode()] = (tp.partition, float(r.timestamp))
    finally:
        await consumer.stop()
    return found


# --- the whole benchmark ---------------------------------------------------------------------


@contextlib.contextmanager
def broker() -> Iterator[str]:
    if os.environ.get("OPS_KAFKA_BOOTSTRAP"):
        yield os.environ["OPS_KAFKA_BOOTSTRAP"]
        return
    data = Path(tempfile.mkdtemp(prefix="bench-kafka-"))
    kafka = KafkaBroker(
        data_dir=data, port=free_port(), controller_port=free_port(), cache_dir=Settings().cache_dir
    )
    kafka.start()
    try:
        kafka.wait_ready(180)
        yield kafka.bootstrap
    finally:
        kafka.stop()


def machine() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem) / 1024**2, 1),
        "python": platform.python_version(),
        "note": "shared machine: other jobs ran Kafka tests at the same time",
    }


def main() -> None:
    total = env_int("BENCH_EVENTS", 1_000_000)
    runs = env_int("BENCH_RUNS", 3)
    worker_runs = env_int("BENCH_WORKER_RUNS", runs)  # the slowest contestant
    skip = set(os.environ.get("BENCH_SKIP", "").split(","))
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    env = {"OPS_LOG_LEVEL": "WARNING"}
    with broker() as bootstrap:
        settings = bench_topics(bootstrap, total)
        prefix = settings.topic_prefix
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for run in range(runs):
            for kind in ("limit", "worker", "quix-count", "quix-full", "quix-durable"):
                if kind in skip or (kind == "worker" and run >= worker_runs):
                    continue
                if kind == "worker":
                    result = run_worker(settings, total, tmp, env)
                else:
                    result = in_subprocess(kind, bootstrap, prefix, total)
                rows[kind].append(result)
                extra = {k: result[k] for k in ("render_ms", "peak_rss_mb") if k in result}
                print(
                    f"run {run + 1}/{runs} {kind}: {result['rate']:,.0f} events/s {extra}",
                    flush=True,
                )
        latency: list[dict[str, Any]] = []
        if "latency" not in skip:
            for run in range(env_int("BENCH_LATENCY_RUNS", runs)):
                try:
                    result = run_latency(settings, tmp, env)
                except RuntimeError as exc:  # the worker fell behind: a result, not a crash
                    result = {"error": str(exc)}
                latency.append(result)
                print(f"run {run + 1} latency: {result}", flush=True)
    report(total, runs, rows, latency)


def median_of(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in results) if results else float("nan")


def report(
    total: int, runs: int, rows: dict[str, list[dict[str, Any]]], latency: list[dict[str, Any]]
) -> None:
    limit = median_of(rows["limit"], "rate")
    ours = median_of(rows["worker"], "rate")
    counting = median_of(rows["worker"], "counting_rate")  # timed as the others are
    quix_count = median_of(rows["quix-count"], "rate")
    quix_full = median_of(rows["quix-full"], "rate")
    quix_durable = median_of(rows["quix-durable"], "rate")
    measured = [r for r in latency if "error" not in r]
    lat = {key: median_of(measured, key) for key in ("p50_ms", "p99_ms", "render_ms") if measured}
    lat["runs"] = len(measured)
    lat["failed_runs"] = len(latency) - len(measured)
    out: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "events": total,
        "runs": runs,
        "limit_rate": limit,
        "worker_rate": ours,
        "worker_to_limit": ours / limit,
        "quix_count_rate": quix_count,
        "quix_full_rate": quix_full,
        "worker_to_quix_count": ours / quix_count,
        "worker_to_quix_full": ours / quix_full,
        "worker_counting_rate": counting,
        "worker_counting_to_limit": counting / limit,
        "worker_counting_to_quix_full": counting / quix_full,
        "quix_durable_rate": quix_durable,
        "worker_to_quix_durable": ours / quix_durable,
        "worker_counting_to_quix_durable": counting / quix_durable,
        "render_ms_after_million": median_of(rows["worker"], "render_ms"),
        "peak_rss_mb": median_of(rows["worker"], "peak_rss_mb"),
        "latency": lat,
        "raw": {**rows, "latency": latency},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        f"{total:,} events, median of {runs} runs"
        f" ({len(rows['worker'])} of the worker), {out['machine']['cores']} cores",
        f"1 limit (aiokafka + orjson + dict)  {limit:>10,.0f} events/s",
        f"2 opsmetrics worker                 {ours:>10,.0f} events/s"
        f"  {ours / limit:.1%} of the limit (healthy to every offset committed)",
        f"  the same, to its last count       {counting:>10,.0f} events/s"
        f"  {counting / limit:.1%} of the limit (timed as the others)",
        f"3 Quix Streams, counting            {quix_count:>10,.0f} events/s"
        f"  ours {ours / quix_count:.2f}x",
        f"  Quix Streams, our work            {quix_full:>10,.0f} events/s"
        f"  ours {ours / quix_full:.2f}x (to its last count {counting / quix_full:.2f}x)",
        f"  Quix Streams, our work, durable   {quix_durable:>10,.0f} events/s"
        f"  ours {ours / quix_durable:.2f}x (to its last count {counting / quix_durable:.2f}x)",
        f"4 publish to /metrics at 1,000/s    p50 {lat.get('p50_ms', float('nan')):.0f} ms,"
        f" p99 {lat.get('p99_ms', float('nan')):.0f} ms (medians of {lat['runs']} runs,"
        f" {lat['failed_runs']} fell behind)",
        f"5 /metrics render, 5x10, after {total:,}: {out['render_ms_after_million']:.1f} ms"
        f" (live: {lat.get('render_ms', float('nan')):.1f} ms)",
        f"6 worker peak RSS after {total:,}    {out['peak_rss_mb']:.0f} MB",
        f"written to {RESULTS}",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        kind, bootstrap, prefix, n = sys.argv[1:5]
        if kind == "limit":
            res = run_limit(bootstrap, prefix, int(n))
        else:
            res = run_quix(bootstrap, prefix, int(n), kind.removeprefix("quix-"))
        print(json.dumps(res))
    else:
        main()
