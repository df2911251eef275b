"""The ingest API against the real broker: events over HTTP land on Kafka, nothing is lost.

The end-to-end check (counted exactly once in the stream worker's /metrics) builds on
:func:`tests.ingest.support.ingest_server` and :func:`tests.ingest.support.send_batches`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from opsmetrics.settings import Settings
from services.ingest.config import IngestSettings
from services.topics import ensure_topics, event_topics
from stack.kafka import KafkaBroker, free_port
from tests.ingest.support import (
    IngestServer,
    event,
    ingest_server,
    keys,
    post_events,
    send_batches,
    simulated_events,
    write_sources,
)
from tests.integration.test_publisher import read_all

pytestmark = pytest.mark.integration


def _topics(settings: Settings) -> list[str]:
    return list(event_topics(settings))


def test_events_over_http_land_on_kafka_exactly_once(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    events = simulated_events(kafka_settings, 1200)
    # more than one burst: this test is about delivery, not the rate limit
    with ingest_server(kafka_settings, tmp_path, rate_per_s=10_000, burst=10_000) as (
        server,
        tokens,
    ):
        results = send_batches(server.base_url, tokens["rms-test"], events)
        status, body, _ = post_events(server.base_url, tokens["rms-test"], event("arrest.made"))
    assert status == 202, body
    assert [r["outcome"] for r in results] == ["accepted"] * len(events)
    expected = Counter([e["event_id"] for e in events] + [body["results"][0]["event_id"]])
    records = read_all(kafka_settings, _topics(kafka_settings), len(expected))
    assert Counter(keys(records)) == expected
    sources = {json.loads(r.value)["source"] for r in records}
    assert sources == {"rms-test"}


def test_the_same_batch_twice_is_duplicate_and_on_kafka_once(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    events = simulated_events(kafka_settings, 300, seed=3)
    with ingest_server(kafka_settings, tmp_path) as (server, tokens):
        first = send_batches(server.base_url, tokens["rms-test"], events)
        second = send_batches(server.base_url, tokens["rms-test"], events)
    assert {r["outcome"] for r in first} == {"accepted"}
    assert {r["outcome"] for r in second} == {"duplicate"}
    records = read_all(kafka_settings, _topics(kafka_settings), len(events))
    assert Counter(keys(records)) == Counter(e["event_id"] for e in events)


def test_duplicates_are_remembered_across_a_restart(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    events = simulated_events(kafka_settings, 50, seed=5)
    with ingest_server(kafka_settings, tmp_path) as (server, tokens):
        send_batches(server.base_url, tokens["rms-test"], events)
    with ingest_server(kafka_settings, tmp_path) as (server, tokens):  # same dedup file
        again = send_batches(server.base_url, tokens["rms-test"], events)
    assert {r["outcome"] for r in again} == {"duplicate"}


def test_kafka_stopped_then_restarted_gives_503_then_success_with_nothing_lost(
    kafka_broker: KafkaBroker | None, kafka_settings: Settings, tmp_path: Path
) -> None:
    if kafka_broker is None:
        pytest.skip("needs the session's own broker (OPS_KAFKA_BOOTSTRAP names an external one)")
    before = simulated_events(kafka_settings, 100, seed=21)
    during = simulated_events(kafka_settings, 400, seed=22)[100:]
    # a short Kafka timeout, so the request during the outage is refused quickly
    with ingest_server(kafka_settings, tmp_path, publish_timeout_s=3.0) as (server, tokens):
        token = tokens["rms-test"]
        assert {r["outcome"] for r in send_batches(server.base_url, token, before)} == {"accepted"}
        try:
            kafka_broker.stop()
            status, body, headers = post_events(server.base_url, token, during)
            assert status == 503, body
            assert body["error"] == "kafka_unavailable"
            assert int(headers["Retry-After"]) >= 1
            assert httpx.get(f"{server.base_url}/health", timeout=10).status_code == 503
            status, _, _ = post_events(server.base_url, token, during)  # fails fast now
            assert status == 503
        finally:
            kafka_broker.start()
            kafka_broker.wait_ready(120)
        # the caller retries the same request until it is accepted
        results = send_batches(server.base_url, token, during, retry_for_s=120)
    assert {r["outcome"] for r in results} == {"accepted"}
    wanted = {e["event_id"] for e in before + during}
    records = read_all(kafka_settings, _topics(kafka_settings), len(wanted))
    # nothing lost; a record from the refused attempt may also have reached Kafka after
    # the restart (at-least-once): the stream counts each event_id once.
    assert set(keys(records)) == wanted


def test_kafka_down_at_start_up_then_up(
    make_settings: Callable[..., Settings], kafka_bootstrap: str, tmp_path: Path
) -> None:
    down = make_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}")
    tokens = write_sources(tmp_path / "sources.toml")
    ingest = IngestSettings(
        sources_file=tmp_path / "sources.toml", publish_timeout_s=2.0, health_interval_s=1.0
    )
    with IngestServer(down, ingest) as server:
        health = httpx.get(f"{server.base_url}/health", timeout=10)
        assert health.status_code == 503
        status, body, headers = post_events(server.base_url, tokens["rms-test"], event())
        assert (status, body["error"]) == (503, "kafka_unavailable")
        assert "Retry-After" in headers


def test_missing_topics_make_health_503(kafka_settings: Settings, tmp_path: Path) -> None:
    write_sources(tmp_path / "sources.toml")
    ingest = IngestSettings(sources_file=tmp_path / "sources.toml", health_interval_s=1.0)
    with IngestServer(kafka_settings, ingest) as server:  # no ensure_topics
        deadline = time.monotonic() + 30
        while True:
            resp = httpx.get(f"{server.base_url}/health", timeout=10)
            if "topics missing" in resp.text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert resp.status_code == 503
    assert "opsmetrics topics" in resp.json()["problem"]


def test_cli_serves_and_logs_no_token_or_event_content(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    ensure_topics(kafka_settings)
    tokens = write_sources(tmp_path / "sources.toml")
    token = tokens["rms-test"]
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "OPS_KAFKA_BOOTSTRAP": kafka_settings.kafka_bootstrap,
        "OPS_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "OPS_DATA_DIR": str(kafka_settings.data_dir),
        "OPS_INGEST_PORT": str(port),
        "OPS_INGEST_SOURCES_FILE": str(tmp_path / "sources.toml"),
        "OPS_LOG_LEVEL": "DEBUG",
        "OPS_LOG_FORMAT": "json",
    }
    log_file = tmp_path / "ingest.log"
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.ingest.cli", "ingest"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
    secret = "Jane Doe 12 High Street"
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log_file.read_text()
            assert time.monotonic() < deadline, log_file.read_text()
            time.sleep(0.2)
        ok = event("referral.received", operation="op-nightjar")
        assert post_events(base, token, ok)[0] == 202
        assert post_events(base, token, [ok, event(suspect=secret), event(risk=secret)])[0] == 207
        assert post_events(base, None, ok)[0] == 401
        assert post_events(base, token + "x", ok)[0] == 401
        assert post_events(base, tokens["referrals-only"], event("arrest.made"))[0] == 403
        resp = httpx.post(
            f"{base}/v1/events?token={token}",
            content=secret.encode(),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status_code == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    logs = log_file.read_text()
    assert '"event": "ingest_request"' in logs
    assert '"event": "event_rejected"' in logs
    for forbidden in (token, tokens["referrals-only"], secret, "op-nightjar", "suspect"):
        assert forbidden not in logs
