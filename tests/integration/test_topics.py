"""Creating topics on the real broker: configs, idempotence, and two creators at once."""

from __future__ import annotations

import threading

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from opsmetrics.settings import Settings
from services.topics import (
    DEADLETTER_RETENTION_MS,
    TopicState,
    admin_client,
    create_missing,
    deadletter_topic,
    ensure_topics,
    event_topics,
)

pytestmark = pytest.mark.integration


def _config(settings: Settings, name: str, key: str) -> str:
    admin = admin_client(settings)
    try:
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        return str(configs["topic"][name][key]["value"])
    finally:
        admin.close()


def test_contract_topics_get_their_configs(kafka_settings: Settings) -> None:
    states = ensure_topics(kafka_settings)
    assert all(s.created for s in states)
    for name in event_topics(kafka_settings):
        assert _config(kafka_settings, name, "message.timestamp.type") == "LogAppendTime"
        assert _config(kafka_settings, name, "retention.ms") == "-1"
    dead = deadletter_topic(kafka_settings)
    assert _config(kafka_settings, dead, "retention.ms") == str(DEADLETTER_RETENTION_MS)


def test_a_topic_created_meanwhile_by_another_process_is_not_an_error(
    kafka_settings: Settings,
) -> None:
    name = kafka_settings.topic("race")
    admin = admin_client(kafka_settings)
    try:
        created, found = create_missing(admin, {name: {}}, 2, 1)
        assert (created, found) == ([name], {name: 2})
        # The broker now answers TopicAlreadyExists, as it does when another process
        # created the topic between this one's listing and its create request.
        admin.list_topics = lambda: []  # type: ignore[method-assign]
        created, found = create_missing(admin, {name: {}}, 2, 1)
        assert (created, found) == ([], {name: 2})
    finally:
        admin.close()


def test_another_error_names_the_topic(kafka_settings: Settings) -> None:
    name = kafka_settings.topic("bad")
    admin = admin_client(kafka_settings)
    try:
        with pytest.raises(Exception, match=f"creating topic {name}"):
            create_missing(admin, {name: {"cleanup.policy": "no-such-policy"}}, 1, 1)
    finally:
        admin.close()


def test_two_services_starting_together_both_start(kafka_settings: Settings) -> None:
    results: list[list[TopicState]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def start() -> None:
        try:
            barrier.wait()
            results.append(ensure_topics(kafka_settings))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert len(results) == 2
    names = [*event_topics(kafka_settings), deadletter_topic(kafka_settings)]
    created: dict[str, int] = dict.fromkeys(names, 0)
    for states in results:
        assert {s.name: s.partitions for s in states} == dict.fromkeys(
            names, kafka_settings.topic_partitions
        )
        for s in states:
            created[s.name] += s.created
    assert created == dict.fromkeys(names, 1)  # each topic created by exactly one of them
