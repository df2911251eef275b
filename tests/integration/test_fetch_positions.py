"""streams/fetch_positions.py against aiokafka and the real broker.

The positions :class:`~streams.fetch_positions.Outstanding` compares and the seek it
makes are aiokafka's own: records handed out and not applied come back from the next
``getmany``; a partition sought meanwhile reads from that seek.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from faust.types import TP
from kafka.admin import KafkaAdminClient, NewTopic

from opsmetrics.settings import Settings
from streams.fetch_positions import Outstanding

pytestmark = pytest.mark.integration


async def _topic_with(settings: Settings, name: str, count: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(name, 1, 1)], wait_for_metadata=True)
    finally:
        admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(name, f"{i}".encode(), partition=0)
    finally:
        await producer.stop()


async def _offsets(consumer: AIOKafkaConsumer, tp: TopicPartition) -> list[int]:
    got = await consumer.getmany(tp, timeout_ms=5000)
    return [r.offset for r in got.get(tp, [])]


async def test_records_not_applied_come_back_and_a_seek_meanwhile_wins(
    kafka_settings: Settings,
) -> None:
    name = f"{kafka_settings.topic_prefix}positions"
    await _topic_with(kafka_settings, name, 10)
    ktp, tp = TopicPartition(name, 0), TP(name, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.kafka_bootstrap)
    await consumer.start()
    try:
        consumer.assign([ktp])
        consumer.seek(ktp, 0)
        outstanding = Outstanding()

        first = await consumer.getmany(ktp, timeout_ms=5000, max_records=4)
        outstanding.handed_out({tp: first[ktp]}, consumer)
        assert [r.offset for r in first[ktp]] == [0, 1, 2, 3]
        outstanding.applied(tp, 1)  # 2 and 3 never applied (the flow stopped)
        assert outstanding.rewind(consumer) == {tp: 2}
        assert (await _offsets(consumer, ktp))[:2] == [2, 3]  # read again

        consumer.seek(ktp, 5)
        again = await consumer.getmany(ktp, timeout_ms=5000, max_records=2)
        outstanding.handed_out({tp: again[ktp]}, consumer)
        assert [r.offset for r in again[ktp]] == [5, 6]
        assert not outstanding.moved(tp)
        consumer.seek(ktp, 0)  # a seek after the fetch returned (recovery's)
        assert outstanding.moved(tp)
        assert outstanding.rewind(consumer) == {}  # the seek stands
        assert (await _offsets(consumer, ktp))[:1] == [0]
    finally:
        await consumer.stop()
