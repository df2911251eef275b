"""Scenario 8: SASL/SCRAM end to end, against a broker of its own that requires it.

The publisher and a real worker process log in with SCRAM-SHA-256 and count events
exactly; with a wrong password the publisher (``opsmetrics emit``), the worker and the
ingest service's Kafka probe stop at once with an error naming the failed
authentication and the settings to fix, instead of retrying until a timeout.
"""

from __future__ import annotations

import secrets
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from opsmetrics.settings import Settings
from services.ingest.kafka_link import probe_kafka
from services.publisher import Publisher
from services.topics import KafkaAuthenticationFailed, ensure_topics
from stack.kafka import SCRAM_MECHANISM, KafkaBroker, free_port
from tests.reliability.cli_env import FORCE, opsmetrics, recent_events, security_env, write_forces
from tests.stream import truth
from tests.stream.test_stream import assert_totals, wait_done
from tests.workers import WorkerPool

pytestmark = pytest.mark.integration

EVENTS = 400
#: A wrong password must be reported well before this (it takes about 2 s); a client
#: that retried until its bootstrap timeout would still finish, so the test also
#: checks what the error says.
WRONG_PASSWORD_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker whose only client listener is SASL_PLAINTEXT with SCRAM-SHA-256."""
    broker = KafkaBroker(
        data_dir=tmp_path_factory.mktemp("kafka-scram"),
        port=free_port(),
        controller_port=free_port(),
        listener_security="SASL_PLAINTEXT",
        # Made up per run: no credential is ever checked in.
        scram_users={"admin": secrets.token_hex(16), "ops": secrets.token_hex(16)},
        cache_dir=Settings().cache_dir,
    )
    try:
        broker.start()
        broker.wait_ready(120)
        yield broker
    finally:
        broker.stop()


def _settings(broker: KafkaBroker, tmp_path: Path, password: str) -> Settings:
    return Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=SCRAM_MECHANISM,
        kafka_sasl_username="ops",
        kafka_sasl_password=password,
        kafka_request_timeout_s=10.0,
        topic_prefix=f"sasl{uuid.uuid4().hex[:6]}.",
        forces_file=write_forces(tmp_path / "forces.toml", {FORCE: ["east", "south", "west"]}),
        data_dir=tmp_path / "run",
        log_format="console",
    )


def test_publisher_and_worker_count_over_scram(scram_broker: KafkaBroker, tmp_path: Path) -> None:
    password = scram_broker.scram_users["ops"]
    settings = _settings(scram_broker, tmp_path, password)
    states = ensure_topics(settings)  # the admin client logged in
    assert {t.partitions for t in states} == {settings.topic_partitions}
    pool = WorkerPool(settings, tmp_path)
    try:
        worker = pool.start(**security_env(settings)).wait_healthy()
        events = recent_events(settings, EVENTS, seed=8)
        with Publisher(settings) as pub:
            pub.publish_many(events)
        samples = wait_done([worker], len(events))
        assert_totals(samples, events)
        # The period API reads the counts changelog with its own (aiokafka) consumer.
        first = (events[0].occurred_at - timedelta(days=1)).date().isoformat()
        last = (events[-1].occurred_at + timedelta(days=1)).date().isoformat()
        url = f"{worker.url}/api/v1/counts?from={first}&to={last}"
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - loopback
            totals = orjson.loads(resp.read())["totals"]
        want = {metric: sum(by.values()) for metric, by in truth.totals(events).items()}
        assert totals == {
            "warrants_executed": want.get("ops_warrants_executed_total", 0),
            "arrests": want.get("ops_arrests_total", 0),
            "children_safeguarded": want.get("ops_children_safeguarded_total", 0),
            "referrals_received": want.get("ops_referrals_received_total", 0),
        }
        listing = opsmetrics(settings, "deadletter", "list")  # kafka-python consumer
        assert listing.returncode == 0, listing.stderr
        assert "(no dead letters match)" in listing.stdout
    finally:
        pool.stop_all()
    logs = "".join(w.log.read_text(errors="replace") for w in pool.workers)
    assert password not in logs


def test_wrong_password_fails_fast_and_says_why(scram_broker: KafkaBroker, tmp_path: Path) -> None:
    good = _settings(scram_broker, tmp_path, scram_broker.scram_users["ops"])
    ensure_topics(good)
    wrong_password = "not-the-password"
    bad = good.model_copy(update={"kafka_sasl_password": SecretStr(wrong_password)})
    wrong = {"OPS_KAFKA_SASL_PASSWORD": wrong_password}

    with pytest.raises(KafkaAuthenticationFailed, match="authentication failed"):
        Publisher(bad)

    emit = opsmetrics(
        bad,
        "emit",
        "--type=referral.received",
        f"--force={FORCE}",
        "--division=east",
        "--referrer=nca",
        "--risk=high",
        timeout_s=WRONG_PASSWORD_TIMEOUT_S,
        **wrong,
    )
    worker = opsmetrics(
        bad,
        "worker",
        timeout_s=WRONG_PASSWORD_TIMEOUT_S,
        OPS_WORKER_PORT=str(free_port()),
        **wrong,
    )
    for name, run in (("emit", emit), ("worker", worker)):
        assert run.returncode != 0, f"{name} did not fail: {run.stdout} {run.stderr}"
        last = run.stderr.strip().splitlines()[-1]
        assert "authentication failed" in last, f"{name}: {last}"
        assert "OPS_KAFKA_SASL_PASSWORD" in last, f"{name}: {last}"
        assert wrong_password not in run.stderr + run.stdout
        print(f"{name} with a wrong password stopped after {run.seconds:.1f} s")

    problem = probe_kafka(bad, timeout_s=5.0)  # the ingest service's health probe
    assert problem is not None
    assert "authentication failed" in problem
    assert probe_kafka(good, timeout_s=5.0) is None
