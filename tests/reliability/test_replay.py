"""Scenario 7: dead letters replayed after a fix are counted once; a second replay counts nothing.

Events of a division the forces file does not know are dead-lettered as
``unknown_division`` (some of them twice: two copies of one event id). The
division is added and the worker restarted; ``opsmetrics deadletter replay`` sends
them back and every counter, by every label, then equals the ground truth of all
valid events (each event id once). A second replay sends nothing; copies sent again
by hand (a replay that died before writing its ledger) are counted as duplicates.
Dead letters of other reasons are never touched.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from opsmetrics.settings import Settings
from services.deadletter import dead_letters
from services.publisher import Publisher, encode
from services.topics import deadletter_topic, ensure_topics, event_topics
from tests.reliability.cli_env import FORCE, opsmetrics, recent_events, write_forces
from tests.stream.test_stream import assert_totals, messages_done, wait_done
from tests.workers import Samples, WorkerPool

pytestmark = pytest.mark.integration

EVENTS = 400  # valid events of four divisions; those of "north" are dead-lettered at first
TWICE = 5  # "north" events published twice
SCHEMA = 10  # dead letters of other reasons, never replayed
MALFORMED = 5
BEFORE = {FORCE: ["east", "south", "west"]}
AFTER = {FORCE: ["east", "south", "west", "north"]}


def _end_offsets(settings: Settings) -> dict[str, int]:
    consumer = KafkaConsumer(**settings.kafka_client_options(), group_id=None)
    try:
        tps = [
            TopicPartition(t, p)
            for t in event_topics(settings)
            for p in consumer.partitions_for_topic(t) or ()
        ]
        out: dict[str, int] = {}
        for tp, end in consumer.end_offsets(tps).items():
            out[tp.topic] = out.get(tp.topic, 0) + end
        return out
    finally:
        consumer.close()


def _rejected(samples: list[Samples]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in samples:
        for labels, v in s.get("ops_events_rejected_total", {}).items():
            if v:
                reason = dict(labels)["reason"]
                out[reason] = out.get(reason, 0) + int(v)
    return out


def _counters(samples: list[Samples]) -> dict[str, Any]:
    names = ("ops_events_processed_total", "ops_events_rejected_total", "ops_arrests_total")
    names += ("ops_warrants_executed_total", "ops_children_safeguarded_total")
    names += ("ops_referrals_received_total",)
    return {n: s.get(n) for s in samples for n in names}


def test_replay_after_adding_the_division(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"rp{uuid.uuid4().hex[:6]}."
    common: dict[str, Any] = {
        "kafka_bootstrap": kafka_bootstrap,
        "topic_prefix": prefix,
        "kafka_request_timeout_s": 10.0,
        "log_format": "console",
    }
    before = Settings(
        **common,
        forces_file=write_forces(tmp_path / "before.toml", BEFORE),
        data_dir=tmp_path / "run-before",
    )
    after = Settings(
        **common,
        forces_file=write_forces(tmp_path / "after.toml", AFTER),
        data_dir=tmp_path / "run-after",
    )
    ensure_topics(before)
    events = recent_events(after, EVENTS, seed=7)
    north = [e for e in events if e.division == "north"]
    valid = [e for e in events if e.division != "north"]
    assert len(north) > 3 * TWICE, len(north)
    assert len(valid) > 100, len(valid)

    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    pools = [WorkerPool(before, tmp_path / "before"), WorkerPool(after, tmp_path / "after")]
    try:
        _scenario(before, after, pools, events, north, valid)
    finally:
        for pool in pools:
            pool.stop_all()


def _scenario(
    before: Settings,
    after: Settings,
    pools: list[WorkerPool],
    events: list[Any],
    north: list[Any],
    valid: list[Any],
) -> None:
    worker = pools[0].start().wait_healthy()
    with Publisher(before) as pub:
        pub.publish_many(valid)
        for e in [*north, *north[:TWICE]]:
            pub.send_raw(before.topic(_short(e.type)), e.event_id.encode(), encode(e))
        for i in range(SCHEMA):
            bad = orjson.loads(encode(north[i])) | {"division": "east", "source": "Not A Slug"}
            pub.send_raw(
                before.topic(_short(north[i].type)), f"schema-{i}".encode(), orjson.dumps(bad)
            )
        for i in range(MALFORMED):
            pub.send_raw(before.topic("arrests"), f"malformed-{i}".encode(), b"{not json")
    sent = len(valid) + len(north) + TWICE + SCHEMA + MALFORMED
    samples = wait_done([worker], sent)
    dead = {"unknown_division": len(north) + TWICE, "schema": SCHEMA, "malformed": MALFORMED}
    assert _rejected(samples) == dead
    assert_totals(samples, valid)

    # A worker killed before committing dead-letters a message again: one more copy.
    copy = next(d for d in dead_letters(before) if d.reason == "unknown_division")
    with Publisher(before) as pub:
        headers = [
            ("source_topic", copy.source_topic.encode()),
            ("source_partition", copy.source_partition.encode()),
            ("source_offset", copy.source_offset.encode()),
            ("reason", copy.reason.encode()),
            ("field", copy.field.encode()),
        ]
        pub.send_raw(deadletter_topic(before), copy.key, copy.value, headers)

    # With the old configuration nothing would be replayed: the cause is not fixed yet.
    dry = opsmetrics(before, "deadletter", "replay", "--reason=unknown_division", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        f"would replay 0; replayed before 0; still rejected {dead['unknown_division']}"
        in dry.stdout
    )

    # The fix: add the division and restart the worker with the new forces file.
    pools[0].stop_all()
    worker = pools[1].start().wait_healthy()
    offsets = _end_offsets(after)
    dry = opsmetrics(after, "deadletter", "replay", "--reason=unknown_division", "--dry-run")
    assert f"would replay {dead['unknown_division']};" in dry.stdout, dry.stdout + dry.stderr
    assert _end_offsets(after) == offsets  # a dry run sends nothing

    first = opsmetrics(after, "deadletter", "replay", "--reason=unknown_division")
    assert first.returncode == 0, first.stderr
    assert f"replayed {dead['unknown_division']}; replayed before 0;" in first.stdout
    print(first.stdout)
    replayed = dead["unknown_division"]
    samples = wait_done([worker], sent + replayed)
    assert_totals(samples, events)  # north counted, each event id once
    processed = {dict(k)["type"]: v for k, v in samples[0]["ops_events_processed_total"].items()}
    want: dict[str, int] = {}
    for e in events:
        want[e.type] = want.get(e.type, 0) + 1
    assert {k: int(v) for k, v in processed.items() if v} == want
    assert _rejected(samples) == dead  # nothing rejected again
    offsets = _end_offsets(after)
    counters = _counters(samples)

    second = opsmetrics(after, "deadletter", "replay", "--reason=unknown_division")
    assert second.returncode == 0, second.stderr
    assert f"replayed 0; replayed before {replayed};" in second.stdout
    assert _end_offsets(after) == offsets  # nothing sent again
    assert _counters([worker.metrics()]) == counters

    # A replay that died after sending its copies but before its ledger write is
    # run again: the copies arrive twice and count once.
    with Publisher(after) as pub:
        for d in dead_letters(after):
            if d.reason == "unknown_division":
                pub.send_raw(d.source_topic, d.key, d.value)
    samples = wait_done([worker], sent + 2 * replayed)
    assert_totals(samples, events)
    assert _counters(samples) == counters

    listing = opsmetrics(after, "deadletter", "list")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    by_reason: dict[str, list[int]] = {}
    for reason, _topic, found, done in rows:
        got = by_reason.setdefault(reason, [0, 0])
        got[0] += int(found)
        got[1] += int(done)
    assert by_reason == {
        "unknown_division": [replayed, replayed],
        "schema": [SCHEMA, 0],  # other reasons untouched
        "malformed": [MALFORMED, 0],
    }
    assert messages_done(samples) == sent + 2 * replayed


def _short(event_type: str) -> str:
    from services.contract.events import TOPIC_OF, EventType

    return TOPIC_OF[EventType(event_type)]
