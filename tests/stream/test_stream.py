"""The stream against the real broker, with real worker processes: counts are exact."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from opsmetrics.settings import Settings
from services.contract.events import ReferralReceived, WarrantExecuted
from services.publisher import Publisher, encode
from services.simulator import Simulator
from services.topics import deadletter_topic, ensure_topics, event_topics, source_partitions
from tests.conftest import load_vector, vectors
from tests.stream import truth
from tests.workers import Samples, Worker, WorkerPool, sum_over, wait_for

pytestmark = pytest.mark.integration


def messages_done(samples: list[Samples]) -> int:
    """Messages accounted for: counted + duplicate + rejected, over all workers."""
    return int(
        sum(
            sum(s.get(name, {}).values())
            for s in samples
            for name in (
                "ops_events_processed_total",
                "ops_events_duplicate_total",
                "ops_events_rejected_total",
            )
        )
    )


def wait_done(workers: list[Worker], expected: int, timeout_s: float = 180) -> list[Samples]:
    """Wait until the workers account for exactly ``expected`` messages.

    More than ``expected`` can show for a moment while two workers hand a
    partition over, so only a count that never settles fails; the failure says
    whether messages were missing or counted twice.
    """
    seen: list[int] = []

    def check() -> list[Samples] | None:
        samples = [w.metrics() for w in workers]
        seen.append(messages_done(samples))
        return samples if seen[-1] == expected else None

    try:
        return wait_for(check, timeout_s, f"{expected} messages accounted for")
    except AssertionError:
        last = seen[-1] if seen else None
        problem = "counted twice" if last is not None and last > expected else "missing"
        raise AssertionError(
            f"messages {problem}: {last} accounted for, {expected} sent (after {timeout_s} s)"
        ) from None


def assert_totals(samples: list[Samples], events: list) -> None:
    expected = truth.totals(events)
    for metric, names in truth.COUNTER.values():
        got = {k: v for k, v in sum_over(samples, metric, names).items() if v}
        assert got == dict(expected.get(metric, {})), metric


def assert_windows(workers: list[Worker], events: list) -> None:
    """Window gauges equal the truth at the scrape time (retried across a bucket edge)."""
    for _ in range(3):
        before = datetime.now(UTC)
        samples = [w.metrics() for w in workers]
        after = datetime.now(UTC)
        if before.timestamp() // 60 != after.timestamp() // 60:
            continue  # a minute edge passed during the scrape: scrape again
        expected = truth.windows(events, after)
        for metric, names in truth.COUNTER.values():
            gauge = metric.removesuffix("_total") + "_window"
            got = {k: v for k, v in sum_over(samples, gauge, (*names, "window")).items() if v}
            assert got == dict(expected.get(gauge, {})), gauge
        return
    pytest.fail("could not scrape within one minute")


def test_contract_vectors(kafka_settings: Settings, workers: WorkerPool) -> None:
    ensure_topics(kafka_settings)
    worker = workers.start().wait_healthy()
    sent = 0
    with Publisher(kafka_settings) as pub:
        for path in vectors("valid") + vectors("invalid"):
            topic, value, _ = load_vector(path)
            key = path.stem.encode()
            if path.parent.name == "valid":
                import json

                key = json.loads(value)["event_id"].encode()
            pub.send_raw(kafka_settings.topic_prefix + topic.removeprefix("ops."), key, value)
            sent += 1
    samples = wait_done([worker], sent)
    s = samples[0]
    rejected = {dict(k)["reason"]: v for k, v in s["ops_events_rejected_total"].items()}
    want: dict[str, float] = {}
    for path in vectors("invalid"):
        reason = load_vector(path)[2]
        assert reason is not None
        want[reason] = want.get(reason, 0) + 1
    assert {k: v for k, v in rejected.items() if v} == want
    processed = {dict(k)["type"]: v for k, v in s["ops_events_processed_total"].items()}
    assert processed == {
        "warrant.executed": 1,
        "arrest.made": 2,
        "safeguarding.action": 1,
        "referral.received": 1,
    }
    arrests = sum_over(samples, "ops_arrests_total", ["division", "previously_known"])
    assert arrests[("south", "true")] == 50
    assert arrests[("west", "false")] == 2
    assert sum_over(samples, "ops_children_safeguarded_total", ["division"])[("east",)] == 3

    # every invalid vector is in the dead-letter topic with its reason and position
    consumer = KafkaConsumer(
        deadletter_topic(kafka_settings),
        **kafka_settings.kafka_client_options(),
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        group_id=None,
    )
    letters = list(consumer)
    consumer.close()
    assert len(letters) == len(vectors("invalid"))
    by_key = {r.key.decode(): r for r in letters}
    for path in vectors("invalid"):
        _, value, reason = load_vector(path)
        record = by_key[path.stem]
        headers = {k: v.decode() for k, v in record.headers}
        assert record.value == value  # the original bytes
        assert headers["reason"] == reason
        assert headers["source_topic"].endswith(load_vector(path)[0].removeprefix("ops."))
        assert int(headers["source_offset"]) >= 0
        assert headers["source_partition"].isdigit()


def test_six_months_with_duplicates_and_malformed(
    kafka_settings: Settings, workers: WorkerPool
) -> None:
    ensure_topics(kafka_settings)
    rng = random.Random(42)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    events = list(
        Simulator(kafka_settings.forces, seed=21).generate(end - timedelta(days=183), end)
    )
    counts = truth.totals(events)
    # the county force's six months: about 75 warrants, 84 arrested, 64 children, 750 referrals
    assert 40 < sum(counts["ops_warrants_executed_total"].values()) < 120
    assert 500 < sum(counts["ops_referrals_received_total"].values()) < 1000
    stream = list(events)
    for e in events:
        if rng.random() < 0.05:  # 5% sent two or three times, later in the stream
            for _ in range(rng.choice((1, 2))):
                stream.insert(rng.randrange(len(stream) + 1), e)
    worker = workers.start().wait_healthy()
    malformed = 0
    with Publisher(kafka_settings) as pub:
        for i in range(0, len(stream), 200):
            pub.publish_many(stream[i : i + 200])
            if rng.random() < 0.5:  # about 1% malformed messages mixed in
                for _ in range(2):
                    junk = rng.randbytes(rng.randrange(1, 60))
                    pub.send_raw(kafka_settings.topic("referrals"), b"junk", junk)
                    malformed += 1
    samples = wait_done([worker], len(stream) + malformed)
    assert_totals(samples, events)
    dups = sum(samples[0]["ops_events_duplicate_total"].values())
    assert dups == len(stream) - len(events)
    rejected = {dict(k)["reason"]: v for k, v in samples[0]["ops_events_rejected_total"].items()}
    assert rejected["malformed"] + rejected["schema"] == malformed
    assert_windows([worker], events)


def _warrant(n: int, at: datetime, division: str = "east") -> WarrantExecuted:
    return WarrantExecuted(
        version=1,
        event_id=f"win-test-{n:04d}",
        type="warrant.executed",
        occurred_at=at,
        force="lancashire",
        division=division,
        source="test",
        origin="proactive",
    )


def test_rolling_and_calendar_windows_with_late_events(
    kafka_settings: Settings, workers: WorkerPool
) -> None:
    ensure_topics(kafka_settings)
    now = datetime.now(UTC)
    ages = [timedelta(minutes=m) for m in (5, 30, 59, 61, 100)]
    ages += [timedelta(hours=h) for h in (3, 23, 25, 100, 167, 170)]
    ages += [timedelta(days=d) for d in (10, 27, 29, 31, 40, 100, 200, 400)]
    events = [_warrant(i, now - age, ("east", "south")[i % 2]) for i, age in enumerate(ages)]
    worker = workers.start().wait_healthy()
    with Publisher(kafka_settings) as pub:
        pub.publish_many(events[:5])  # newer events first ...
        pub.publish_many(events[5:][::-1])  # ... then late ones, oldest first
    wait_done([worker], len(events))
    assert_windows([worker], events)
    assert_totals([worker.metrics()], events)


def test_two_workers_sum_exactly_before_and_after_one_stops(
    kafka_settings: Settings, workers: WorkerPool
) -> None:
    ensure_topics(kafka_settings)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = list(
        Simulator(kafka_settings.forces, seed=5).generate(start, start + timedelta(days=120))
    )
    a = workers.start().wait_healthy()
    b = workers.start().wait_healthy()

    def split_evenly() -> bool:
        owned = [
            set(dict(k)["partition"] for k in w.metrics().get("ops_worker_partition_active", {}))
            for w in (a, b)
        ]
        return (
            bool(owned[0])
            and bool(owned[1])
            and not owned[0] & owned[1]
            and len(owned[0] | owned[1]) == 6
        )

    wait_for(split_evenly, 120, "both workers to own partitions")
    with Publisher(kafka_settings) as pub:
        pub.publish_many(events)
    samples = wait_done([a, b], len(events))
    assert_totals(samples, events)
    b.stop()
    wait_for(
        lambda: len(a.metrics().get("ops_worker_partition_active", {})) == 6,
        120,
        "the remaining worker to own all partitions",
    )
    more = list(
        Simulator(kafka_settings.forces, seed=6).generate(start, start + timedelta(days=30))
    )
    with Publisher(kafka_settings) as pub:
        pub.publish_many(more)
    samples = wait_done([a], len(events) + len(more))
    assert_totals(samples, events + more)


def test_kill_9_while_events_flow_then_restart(
    kafka_settings: Settings, workers: WorkerPool
) -> None:
    ensure_topics(kafka_settings)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    sim = Simulator(kafka_settings.forces, seed=9)
    events = [
        e
        for d in range(0, 10 * 365, 365)
        for e in sim.generate(start + timedelta(days=d), start + timedelta(days=d + 300))
    ][:6000]
    worker = workers.start().wait_healthy()
    done = threading.Event()

    def publish() -> None:
        with Publisher(kafka_settings) as pub:
            for i in range(0, len(events), 100):
                pub.publish_many(events[i : i + 100])
                time.sleep(0.02)
        done.set()

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    wait_for(lambda: messages_done([worker.metrics()]) > 1000, 120, "1000 events processed")
    worker.kill()  # kill -9 mid-stream
    restarted = workers.start().wait_healthy()
    thread.join(timeout=300)
    assert done.is_set()
    samples = wait_done([restarted], len(events), timeout_s=300)
    assert_totals(samples, events)
    assert sum(samples[0]["ops_events_duplicate_total"].values()) == 0


def _commit_group_to_end(settings: Settings) -> int:
    """Commit the stream group's offsets at the topics' ends; return how far they moved."""
    consumer = KafkaConsumer(
        group_id=f"{settings.topic_prefix}stream",
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in event_topics(settings)
            for p in range(source_partitions(settings))
        ]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        before = {tp: consumer.committed(tp) or 0 for tp in tps}
        consumer.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in tps})
        return sum(ends[tp] - before[tp] for tp in tps)
    finally:
        consumer.close()


def test_offsets_committed_past_unapplied_messages_are_read_again(
    kafka_settings: Settings, workers: WorkerPool
) -> None:
    """Counting resumes from the offsets kept with the counts, not from Faust's commit.

    A commit that ran ahead of the work (the bug behind losses with lag 0) is staged
    by committing the group's offsets at the end while messages wait unread.
    """
    ensure_topics(kafka_settings)
    start = datetime(2025, 6, 1, tzinfo=UTC)
    events = list(
        Simulator(kafka_settings.forces, seed=12).generate(start, start + timedelta(days=365))
    )[:600]
    assert len(events) == 600
    worker = workers.start().wait_healthy()
    with Publisher(kafka_settings) as pub:
        pub.publish_many(events[:300])
    wait_done([worker], 300)
    worker.stop()
    with Publisher(kafka_settings) as pub:
        pub.publish_many(events[300:])
    assert _commit_group_to_end(kafka_settings) == 300  # 300 messages marked done unread
    restarted = workers.start().wait_healthy()
    samples = wait_done([restarted], len(events))
    assert_totals(samples, events)
    assert sum(samples[0]["ops_events_duplicate_total"].values()) == 0


def test_promtool_finds_nothing_to_fix(
    kafka_settings: Settings, workers: WorkerPool, tmp_path: Path
) -> None:
    ensure_topics(kafka_settings)
    worker = workers.start().wait_healthy()
    with Publisher(kafka_settings) as pub:
        pub.publish(
            ReferralReceived(
                version=1,
                event_id="ref-promtool-1",
                type="referral.received",
                occurred_at=datetime.now(UTC),
                force="lancashire",
                division="west",
                source="test",
                referrer="iwf",
                risk="low",
            )
        )
    wait_done([worker], 1)
    import urllib.request

    with urllib.request.urlopen(f"{worker.url}/metrics") as resp:  # noqa: S310
        text = resp.read()
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b"", result
    assert result.stderr.strip() == b"", result
    assert encode  # the wire encoding is the publisher's
