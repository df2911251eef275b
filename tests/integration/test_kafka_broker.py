"""The local single-node Kafka (stack/kafka.py) against real clients."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

import stack.kafka as sk
from opsmetrics.settings import Settings
from stack.kafka import KafkaBroker, KafkaStackError, ensure_jars, free_port

pytestmark = pytest.mark.integration


def _create_topic(bootstrap: str, partitions: int = 1) -> str:
    name = f"test.kafka-broker.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for value in values:
            producer.send(topic, value=value, partition=0)
        producer.flush(timeout=30)
    finally:
        producer.close()


def _consume(bootstrap: str, topic: str, count: int, timeout_s: float = 30) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        got: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend(r.value for r in records)
        return got
    finally:
        consumer.close()


def _topics(bootstrap: str) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return list(admin.list_topics())
    finally:
        admin.close()


def _processes_for(broker: KafkaBroker) -> list[int]:
    """Pids of any process whose command line names this broker's server.properties."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(broker.properties_file).encode() in cmdline:
                pids.append(int(proc.name))
    return pids


def test_topic_produce_consume(kafka_bootstrap: str) -> None:
    topic = _create_topic(kafka_bootstrap)
    assert topic in _topics(kafka_bootstrap)
    values = [f"event-{i}".encode() for i in range(5)]
    _produce(kafka_bootstrap, topic, values)
    assert _consume(kafka_bootstrap, topic, len(values)) == values


def test_stop_leaves_nothing_and_restart_keeps_data(tmp_path: Path) -> None:
    broker = KafkaBroker(
        tmp_path / "kafka",
        port=free_port(),
        controller_port=free_port(),
        cache_dir=Settings().cache_dir,
    )
    try:
        broker.start()
        broker.wait_ready(120)
        first_pid = broker.pid()
        assert first_pid is not None
        topic = _create_topic(broker.bootstrap)
        values = [b"kept-1", b"kept-2", b"kept-3"]
        _produce(broker.bootstrap, topic, values)

        broker.stop()
        assert not broker.is_running()
        assert not broker.pid_file.exists()
        assert not Path(f"/proc/{first_pid}").exists()  # gone and reaped, not a zombie
        assert _processes_for(broker) == []

        meta = (broker.log_dir / "meta.properties").read_text()
        broker.start()  # same data dir: must not reformat (-g / meta.properties check)
        broker.wait_ready(120)
        assert (broker.log_dir / "meta.properties").read_text() == meta
        assert broker.pid() not in (None, first_pid)
        assert topic in _topics(broker.bootstrap)
        assert _consume(broker.bootstrap, topic, len(values)) == values
    finally:
        broker.stop()
    assert _processes_for(broker) == []


def test_wait_ready_reports_a_dead_broker(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = KafkaBroker(
            tmp_path / "kafka",
            port=taken.getsockname()[1],
            controller_port=free_port(),
            cache_dir=Settings().cache_dir,
        )
        try:
            broker.start()
            with pytest.raises(KafkaStackError, match="exited before it was ready") as info:
                broker.wait_ready(120)
        finally:
            broker.stop()
    assert "server.log" in str(info.value)
    assert "Address already in use" in str(info.value)
    assert _processes_for(broker) == []


def test_ensure_jars_second_call_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Settings().cache_dir
    libs = ensure_jars(cache)
    marker = libs.parent / ".complete"
    assert marker.is_file()
    assert sk.jars_cached(cache)
    assert (libs / f"kafka_2.13-{sk.KAFKA_VERSION}.jar").is_file()
    assert (libs / f"log4j-slf4j-impl-{sk.LOG4J_VERSION}.jar").is_file()
    stamp = marker.stat().st_mtime_ns

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"ensure_jars ran a process on a cached call: {args}")

    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    assert ensure_jars(cache) == libs
    assert marker.stat().st_mtime_ns == stamp


def test_ensure_jars_redoes_an_unfinished_copy(tmp_path: Path) -> None:
    libs = tmp_path / "kafka" / sk.KAFKA_VERSION / "libs.partial"
    libs.mkdir(parents=True)
    (libs / "half-copied.jar").write_bytes(b"")  # as if mvn died mid-copy: no marker
    assert not sk.jars_cached(tmp_path)
    done = ensure_jars(tmp_path)
    assert sk.jars_cached(tmp_path)
    assert not libs.exists()
    assert not (done / "half-copied.jar").exists()
    assert len(list(done.glob("*.jar"))) > 40
    shutil.rmtree(tmp_path / "kafka")  # about 40 MB of jars
