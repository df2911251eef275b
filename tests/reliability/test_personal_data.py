"""Scenario 9: no personal data in /metrics or in the logs of the worker and the ingest API.

A real worker reads valid events mixed with hostile messages that carry a made-up
name and address in every place a sender could put them: free text in fields,
unknown keys (the key itself a name), bad slugs, slugs that are valid but name a
person (a ``source`` or ``operation`` the contract accepts), a message key, non-JSON,
other encodings, oversized values. Then:

* every label name and value on /metrics must come from the configured forces and
  divisions, the contract's enumerations or the worker's fixed sets (partitions,
  windows, topics, periods, histogram bounds), all derived from config and code;
* every log line is JSON, none holds a marker, and every line about a message carries
  only its id, type, topic position, rejection reason and contract field name;
* the markers are in the dead-letter topic (a rejected message lives there only).
"""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from opsmetrics.settings import Settings
from services.contract.events import (
    KNOWN_FIELDS,
    ORIGINS,
    REFERRERS,
    RISKS,
    TOPIC_OF,
    EventType,
    RejectReason,
)
from services.deadletter import dead_letters
from services.ingest.metrics import LATENCY_BUCKETS, OUTCOMES, STATUSES
from services.publisher import Publisher, encode
from services.topics import deadletter_topic, ensure_topics, event_topics
from stack.kafka import free_port
from streams.app import DELAY_BUCKETS
from streams.periods import MEASURES, PERIODS
from streams.view import WINDOWS
from tests.ingest.support import event as support_event
from tests.ingest.support import post_events, write_sources
from tests.reliability.cli_env import FORCE, environment, recent_events, write_forces
from tests.stream.test_stream import assert_totals, wait_done
from tests.workers import WorkerPool, wait_for

pytestmark = pytest.mark.integration

NAME: Final = "Zebedee Quatermass"  # made up: a person's name
ADDRESS: Final = "17 Acacia Avenue"  # made up: an address
SLUG: Final = "zebedee-quatermass"  # the name as a valid slug
MARKERS: Final = re.compile(r"zebedee|quatermass|acacia", re.IGNORECASE)
EVENTS: Final = 200
#: Keys a structured log line about one message may carry (besides event/level/time).
MESSAGE_KEYS: Final = {"topic", "partition", "offset", "to_partition", "reason", "field"}
MESSAGE_KEYS_WITH_ID: Final = MESSAGE_KEYS | {"event_id", "type"}
META_KEYS: Final = {"event", "level", "timestamp", "logger"}
EVENT_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def _wire(event: Any, **changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads(encode(event))
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not None}


def _hostile(
    settings: Settings, donors: list[Any]
) -> tuple[list[tuple[str, bytes, bytes]], dict[str, int], list[Any]]:
    """(topic, key, value) messages with markers; rejections by reason; accepted events."""
    arrest = next(e for e in donors if e.type == "arrest.made")
    referral = next(e for e in donors if e.type == "referral.received")
    topic = {e.type: settings.topic(TOPIC_OF[EventType(e.type)]) for e in (arrest, referral)}
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="seconds")
    bad: list[tuple[str, dict[str, Any] | bytes, str]] = [
        ("arrest.made", _wire(arrest, suspect=NAME), "schema"),  # unknown key, free text
        ("arrest.made", _wire(arrest, notes=ADDRESS), "schema"),
        ("arrest.made", {**_wire(arrest), NAME: ADDRESS}, "schema"),  # the key is the name
        ("arrest.made", _wire(arrest, operation=f"{NAME}, {ADDRESS}"), "schema"),
        ("arrest.made", _wire(arrest, persons=NAME), "schema"),
        ("arrest.made", _wire(arrest, occurred_at=ADDRESS), "schema"),
        ("arrest.made", _wire(arrest, type=NAME), "schema"),
        ("arrest.made", _wire(arrest, event_id=f"{NAME} {ADDRESS}"), "schema"),
        ("referral.received", _wire(referral, referrer=NAME), "schema"),
        ("referral.received", _wire(referral, risk=ADDRESS), "schema"),
        ("arrest.made", _wire(arrest, division=SLUG), "unknown_division"),
        ("arrest.made", _wire(arrest, force=SLUG), "unknown_division"),
        ("referral.received", _wire(referral, occurred_at=future, source=SLUG), "future"),
        ("arrest.made", f"{NAME}, {ADDRESS}".encode(), "malformed"),
        ("arrest.made", f'{{"a": "{NAME}"}}'.encode("utf-16"), "malformed"),
        ("arrest.made", f'{{"division": "{SLUG}", "division": "east"}}'.encode(), "malformed"),
        ("arrest.made", orjson.dumps([NAME, ADDRESS]), "malformed"),
        ("arrest.made", _wire(arrest, notes=f"{NAME} {ADDRESS} " * 3000), "too_large"),
    ]
    messages: list[tuple[str, bytes, bytes]] = []
    reasons: dict[str, int] = {}
    for i, (etype, value, reason) in enumerate(bad):
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        messages.append((topic[etype], f"hostile-{i:03d}".encode(), raw))
        reasons[reason] = reasons.get(reason, 0) + 1
    # A referral on the arrests topic, naming a person in a valid slug.
    mismatch = _wire(referral, event_id="hostile-mismatch", operation=SLUG)
    messages.append((topic["arrest.made"], b"hostile-mismatch", orjson.dumps(mismatch)))
    reasons["type_mismatch"] = 1
    # Accepted: a person's name as a valid slug where the contract allows any slug, and
    # a valid event under a message key that is a name (re-sent under its event id).
    accepted = [
        arrest.model_copy(update={"event_id": "accepted-source-01", "source": SLUG}),
        arrest.model_copy(update={"event_id": "accepted-operation-01", "operation": SLUG}),
        referral.model_copy(update={"event_id": "accepted-key-01"}),
    ]
    for e, key in zip(
        accepted, (b"accepted-source-01", b"accepted-operation-01", NAME.encode()), strict=True
    ):
        messages.append((topic[e.type], key, encode(e)))
    return messages, reasons, accepted


def _allowed_labels(settings: Settings, partitions: int) -> dict[str, set[str]]:
    """Every label name the worker may export, with every value it may take."""
    divisions = {d for force in settings.forces.values() for d in force.divisions}
    implementation = platform.python_implementation()
    major, minor, patch = platform.python_version_tuple()
    return {
        "force": set(settings.forces),
        "division": divisions,
        "origin": set(ORIGINS),
        "previously_known": {"false", "true"},
        "referrer": set(REFERRERS),
        "risk": set(RISKS),
        "window": set(WINDOWS),
        "type": {t.value for t in EventType},
        "reason": {r.value for r in RejectReason},
        "partition": {str(p) for p in range(partitions)},
        "topic": set(event_topics(settings)),
        "measure": set(MEASURES.values()),
        "period": set(PERIODS),
        "le": {floatToGoString(b) for b in DELAY_BUCKETS} | {"+Inf"},
        # python_info, from the platform module
        "implementation": {implementation},
        "major": {major},
        "minor": {minor},
        "patchlevel": {patch},
        "version": {platform.python_version()},
    }


def _structured(line: str) -> dict[str, Any]:
    """The fields of one JSON log line."""
    fields = orjson.loads(line)
    assert isinstance(fields, dict), line
    return fields


def test_no_personal_data_in_metrics_or_logs(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"pd{uuid.uuid4().hex[:6]}.",
        forces_file=write_forces(tmp_path / "forces.toml", {FORCE: ["east", "south", "west"]}),
        data_dir=tmp_path / "run",
        log_format="console",
    )
    states = ensure_topics(settings)
    partitions = states[0].partitions
    events = recent_events(settings, EVENTS, seed=9)
    messages, reasons, accepted = _hostile(settings, events)
    pool = WorkerPool(settings, tmp_path)
    try:
        worker = pool.start().wait_healthy()
        with Publisher(settings) as pub:
            pub.publish_many(events)
            for topic, key, value in messages:
                pub.send_raw(topic, key, value)
        samples = wait_done([worker], len(events) + len(messages))
        assert_totals(samples, [*events, *accepted])
        rejected = {
            dict(k)["reason"]: int(v)
            for k, v in samples[0]["ops_events_rejected_total"].items()
            if v
        }
        assert rejected == reasons
        with urllib.request.urlopen(f"{worker.url}/metrics", timeout=10) as resp:  # noqa: S310
            body = resp.read().decode()
    finally:
        pool.stop_all()

    # (a) /metrics: no marker, and every label value from config, enumerations or fixed sets
    assert not MARKERS.search(body), MARKERS.findall(body)
    allowed = _allowed_labels(settings, partitions)
    seen_names: set[str] = set()
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            for name, value in sample.labels.items():
                seen_names.add(name)
                assert name in allowed, f"{sample.name}: label {name!r} is not a known label"
                assert value in allowed[name], f"{sample.name}: {name}={value!r} is not allowed"
    assert {"force", "division", "reason", "type", "window"} <= seen_names

    # (b) logs: no marker anywhere; message lines carry positions, ids and reasons only
    log = "".join(w.log.read_text(errors="replace") for w in pool.workers)
    leaks = [line for line in log.splitlines() if MARKERS.search(line)]
    assert not leaks, leaks[:5]
    topics = {*event_topics(settings), deadletter_topic(settings)}
    rejected_lines = 0
    for line in filter(str.strip, log.splitlines()):
        fields = _structured(line)  # every line is JSON (OPS_LOG_FORMAT=json)
        if "offset" not in fields:
            continue  # not about one message
        extra = set(fields) - META_KEYS - MESSAGE_KEYS_WITH_ID
        assert not extra, f"log line carries {sorted(extra)}: {line}"
        assert fields.get("topic") in topics, line
        assert fields.get("reason") in {None, *(r.value for r in RejectReason)}, line
        assert fields.get("field") in {None, *KNOWN_FIELDS}, line
        assert fields.get("event_id") is None or EVENT_ID.match(fields["event_id"]), line
        rejected_lines += fields["event"] == "rejected"
    assert rejected_lines == sum(reasons.values())  # the scan saw every rejection

    # The rejected content lives in the dead-letter topic, and only there.
    letters = [d.value or b"" for d in dead_letters(settings)]
    assert len(letters) == sum(reasons.values())
    text = [v.decode("utf-8", "replace").replace("\x00", "") for v in letters]  # UTF-16 too
    assert all(MARKERS.search(t) for t in text)


def test_no_personal_data_in_ingest_metrics_or_logs(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The same hostile content posted to a real ``opsmetrics ingest`` process."""
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"pi{uuid.uuid4().hex[:6]}.",
        forces_file=write_forces(tmp_path / "forces.toml", {FORCE: ["east", "south", "west"]}),
        data_dir=tmp_path / "run",
        log_format="console",
    )
    ensure_topics(settings)
    tokens = write_sources(tmp_path / "sources.toml")
    token = tokens["rms-test"]
    port = free_port()
    env = environment(
        settings,
        OPS_INGEST_PORT=str(port),
        OPS_INGEST_SOURCES_FILE=str(tmp_path / "sources.toml"),
    )
    log_file = tmp_path / "ingest.log"
    base = f"http://127.0.0.1:{port}"
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opsmetrics.cli", "ingest"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: httpx.get(f"{base}/health", timeout=5).status_code == 200,
            60,
            "the ingest API healthy",
        )
        ok = support_event("arrest.made")
        hostile = [
            ok | {"suspect": NAME},
            ok | {NAME: ADDRESS},
            ok | {"operation": f"{NAME}, {ADDRESS}"},
            ok | {"event_id": f"{NAME} {ADDRESS}"},
            ok | {"type": NAME},
            ok | {"division": SLUG},
            ok | {"persons": NAME},
            ok | {"occurred_at": ADDRESS},
            ok | {"notes": f"{NAME} {ADDRESS} " * 3000},
            [NAME, ADDRESS],
        ]
        status, body, _ = post_events(base, token, hostile)
        assert status == 207, body
        assert all(r["outcome"] == "rejected" for r in body["results"]), body
        forbidden = post_events(base, token, ok | {"force": SLUG})  # not this source's force
        assert forbidden[0] == 403, forbidden
        accepted = support_event("arrest.made", operation=SLUG)  # a name as a valid slug
        assert post_events(base, token, accepted)[0] == 202
        not_json = httpx.post(
            f"{base}/v1/events",
            content=f"{NAME}, {ADDRESS}".encode(),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert not_json.status_code == 400
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    assert not MARKERS.search(metrics), MARKERS.findall(metrics)
    allowed = {
        "status": {str(s) for s in STATUSES},
        "source": set(tokens),
        "outcome": set(OUTCOMES),
        "reason": {"", *(r.value for r in RejectReason)},
        "le": {floatToGoString(b) for b in LATENCY_BUCKETS} | {"+Inf"},
    }
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            for name, value in sample.labels.items():
                assert value in allowed.get(name, set()), f"{sample.name}: {name}={value!r}"

    log = log_file.read_text(errors="replace")
    assert not MARKERS.search(log), [line for line in log.splitlines() if MARKERS.search(line)][:5]
    per_event = 0
    for line in filter(str.strip, log.splitlines()):
        fields = _structured(line)
        if fields["event"] in {"event_rejected", "event_result"}:
            per_event += 1
            extra = set(fields) - META_KEYS - {"source", "event_id", "type", "reason", "field"}
            assert not extra - {"outcome"}, f"log line carries {sorted(extra)}: {line}"
            assert fields.get("event_id") is None or EVENT_ID.match(fields["event_id"]), line
            assert fields.get("field") in {None, *KNOWN_FIELDS}, line
    assert per_event >= len(hostile)  # the scan saw every rejection
