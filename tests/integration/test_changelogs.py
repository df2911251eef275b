"""The worker's changelogs exist, compacted, before Faust starts (streams/changelogs.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from opsmetrics.settings import Settings
from services.topics import ensure_topics
from streams.app import create_app
from streams.changelogs import TABLES, changelog_topic, changelog_topics, ensure_changelogs
from tests.workers import WorkerPool

pytestmark = pytest.mark.integration


def _describe(settings: Settings, names: list[str]) -> dict[str, tuple[int, str, str | None]]:
    """Topic -> (partitions, cleanup.policy, segment.ms set on the topic)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        parts = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        out = {}
        for name in names:
            topic = configs["topic"][name]
            segment = topic.get("segment.ms", {}).get("value")
            out[name] = (parts[name], str(topic["cleanup.policy"]["value"]), segment)
        return out
    finally:
        admin.close()


def test_names_are_fausts(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(topic_prefix="names.")
    app, _ = create_app(settings, 3)
    faust_names = {name: app.tables[name].changelog_topic.get_topic_name() for name in TABLES}
    assert set(app.tables) == set(TABLES)
    assert faust_names == {name: changelog_topic(settings, name) for name in TABLES}


def test_created_compacted_once(kafka_settings: Settings) -> None:
    created = ensure_changelogs(kafka_settings, 3)
    names = changelog_topics(kafka_settings)
    assert created == names
    assert _describe(kafka_settings, names) == {
        name: (3, "compact", "3600000") for name in names
    }  # segments rolled hourly, so that Kafka can compact them
    assert ensure_changelogs(kafka_settings, 3) == []  # idempotent


def test_an_existing_changelog_gets_the_configured_segment_roll(kafka_settings: Settings) -> None:
    """Changelogs created before segment.ms was set (or with another value) get it."""
    names = changelog_topics(kafka_settings)
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.kafka_bootstrap)
    try:  # as Faust (or an earlier release) created them: compacted, default segments
        admin.create_topics(
            [NewTopic(n, 3, 1, topic_configs={"cleanup.policy": "compact"}) for n in names],
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    assert {d[2] for d in _describe(kafka_settings, names).values()} == {None}
    assert ensure_changelogs(kafka_settings, 3) == []
    assert {d[2] for d in _describe(kafka_settings, names).values()} == {"3600000"}
    other = kafka_settings.model_copy(update={"changelog_segment_ms": 60_000})
    assert ensure_changelogs(other, 3) == []
    assert _describe(kafka_settings, names) == {name: (3, "compact", "60000") for name in names}


def test_other_partition_count_stops_start_up(
    kafka_settings: Settings, workers: WorkerPool
) -> None:
    ensure_topics(kafka_settings)  # the event topics: OPS_TOPIC_PARTITIONS of them
    wrong = kafka_settings.topic_partitions + 1
    name = changelog_topic(kafka_settings, "seen")
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(name, wrong, 1)], wait_for_metadata=True)
    finally:
        admin.close()
    with pytest.raises(ValueError, match=f"changelog topic {name} has {wrong} partitions"):
        ensure_changelogs(kafka_settings, kafka_settings.topic_partitions)

    worker = workers.start()
    assert worker.proc is not None
    assert worker.proc.wait(timeout=120) != 0
    log = worker.log.read_text()
    assert f"changelog topic {name} has {wrong} partitions" in log
    assert "OPS_TOPIC_PARTITIONS" in log
