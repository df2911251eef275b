"""Publishing against the real broker: exactly once with its key, clear errors when down."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from opsmetrics.settings import Settings
from services.publisher import InvalidEvent, Publisher
from services.simulator import Simulator
from services.topics import KafkaUnavailable, deadletter_topic, ensure_topics, event_topics
from stack.kafka import free_port
from tests.conftest import load_vector, vectors

pytestmark = pytest.mark.integration


def read_all(settings: Settings, topics: list[str], expected: int, timeout_s: float = 60):
    """Every record on ``topics`` (waits until ``expected`` arrived, then 1 s more)."""
    consumer = KafkaConsumer(
        *topics,
        **settings.kafka_client_options(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
    )
    records = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
            if len(records) >= expected and not batch:
                break
    finally:
        consumer.close()
    return records


def _cli(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "OPS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "OPS_TOPIC_PREFIX": settings.topic_prefix,
        "OPS_DATA_DIR": str(settings.data_dir),
        "OPS_LOG_FORMAT": "console",
    }
    return subprocess.run(
        [sys.executable, "-m", "opsmetrics.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_topics_command_creates_the_contract_topics(kafka_settings: Settings) -> None:
    result = _cli(kafka_settings, "topics")
    assert result.returncode == 0, result.stderr
    wanted = [*event_topics(kafka_settings), deadletter_topic(kafka_settings)]
    for name in wanted:
        assert f"{name}" in result.stdout
    assert result.stdout.count("created") == 5
    states = ensure_topics(kafka_settings)  # second run: all exist, 6 partitions each
    assert {(s.partitions, s.created) for s in states} == {(6, False)}


def test_every_event_read_back_exactly_once_with_its_key(kafka_settings: Settings) -> None:
    ensure_topics(kafka_settings)
    start = datetime(2025, 4, 1, tzinfo=UTC)
    events = list(
        Simulator(kafka_settings.forces, seed=11).generate(start, start + timedelta(days=40))
    )
    assert len(events) > 150
    with Publisher(kafka_settings) as pub:
        deliveries = pub.publish_many(events)
    assert len(deliveries) == len(events)
    records = read_all(kafka_settings, list(event_topics(kafka_settings)), len(events))
    by_key = Counter(r.key.decode() for r in records)
    assert by_key == Counter(e.event_id for e in events)
    for r in records:
        assert json.loads(r.value)["event_id"] == r.key.decode()
    # the same key always lands on the same partition (duplicates meet in one place)
    with Publisher(kafka_settings) as pub:
        again = pub.publish(events[0])
    assert again.partition == deliveries[0].partition


def test_invalid_event_is_never_sent(kafka_settings: Settings) -> None:
    ensure_topics(kafka_settings)
    event = next(
        iter(
            Simulator(kafka_settings.forces, seed=1).generate(
                datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 4, 10, tzinfo=UTC)
            )
        )
    )
    bad = event.model_copy(update={"division": "north"})
    with Publisher(kafka_settings) as pub, pytest.raises(InvalidEvent, match="unknown_division"):
        pub.publish_many([event, bad])
    assert read_all(kafka_settings, list(event_topics(kafka_settings)), 0, timeout_s=3) == []


def test_broker_down_gives_a_clear_error_quickly(make_settings) -> None:
    settings = make_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", kafka_request_timeout_s=5)
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable, match="not reachable"):
        Publisher(settings)
    assert time.monotonic() - started < 30
    result = _cli(
        settings,
        "emit",
        "--type",
        "referral.received",
        "--force",
        "lancashire",
        "--division",
        "east",
        "--referrer",
        "nca",
        "--risk",
        "high",
        timeout=60,
    )
    assert result.returncode == 1
    assert "not reachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_emit_from_flags_and_from_json(kafka_settings: Settings) -> None:
    ensure_topics(kafka_settings)
    ok = _cli(
        kafka_settings,
        "emit",
        "--type",
        "arrest.made",
        "--force",
        "lancashire",
        "--division",
        "west",
        "--persons",
        "2",
        "--origin",
        "referral",
        "--not-known",
        "--event-id",
        "arr:test:0001",
    )
    assert ok.returncode == 0, ok.stderr
    assert "sent arr:test:0001" in ok.stdout
    _, value, _ = load_vector(vectors("valid")[0])
    ok_json = _cli(kafka_settings, "emit", "--json", value.decode())
    assert ok_json.returncode == 0, ok_json.stderr
    bad = _cli(
        kafka_settings,
        "emit",
        "--type",
        "arrest.made",
        "--force",
        "lancashire",
        "--division",
        "west",
        "--persons",
        "0",
        "--origin",
        "referral",
        "--not-known",
    )
    assert bad.returncode == 2
    assert "schema (persons)" in bad.stderr
    records = read_all(kafka_settings, [kafka_settings.topic("arrests")], 2)
    assert sorted(r.key.decode() for r in records) == sorted(
        ["arr:test:0001", json.loads(value)["event_id"]]
    )


def test_import_reports_rejections_and_sends_the_rest(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    ensure_topics(kafka_settings)
    lines = [load_vector(p)[1].decode() for p in vectors("valid")]
    lines += ["not json", json.dumps({"version": 1}), ""]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = _cli(kafka_settings, "import", str(path))
    assert result.returncode == 3, result.stderr
    assert "sent 5; rejected locally 2 (1 malformed, 1 schema)" in result.stdout
    assert "line 6: malformed" in result.stderr
    records = read_all(kafka_settings, list(event_topics(kafka_settings)), 5)
    assert len(records) == 5


def test_simulate_backfill_publishes_what_the_simulator_generates(kafka_settings: Settings) -> None:
    ensure_topics(kafka_settings)
    result = _cli(
        kafka_settings,
        "simulate",
        "--seed",
        "4",
        "--backfill",
        "2025-04-01",
        "2025-05-01",
        "--spike",
        "5",
    )
    assert result.returncode == 0, result.stderr
    expected = list(
        Simulator(kafka_settings.forces, seed=4).generate(
            datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC)
        )
    )
    records = read_all(kafka_settings, list(event_topics(kafka_settings)), len(expected) + 5)
    assert len(records) == len(expected) + 5
    assert {e.event_id for e in expected} <= {r.key.decode() for r in records}
