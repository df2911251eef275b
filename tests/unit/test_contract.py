"""The contract's test vectors and the strictness rules, through the one classifier."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.contract.classify import Accepted, Classifier, Rejected
from tests.conftest import CONTRACT_VECTORS, load_vector, vectors

LANCASHIRE = {"lancashire": ["east", "south", "west"]}
NOW = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
classifier = Classifier.for_prefix("ops.", LANCASHIRE, clock=lambda: NOW)


def test_fixtures_are_complete() -> None:
    assert len(vectors("valid")) == 5
    assert len(vectors("invalid")) == 16
    reasons = {load_vector(p)[2] for p in vectors("invalid")}
    assert reasons == {
        "malformed",
        "schema",
        "type_mismatch",
        "unknown_division",
        "future",
        "too_large",
    }


@pytest.mark.parametrize("path", vectors("valid"), ids=lambda p: p.stem)
def test_valid_vectors_are_accepted(path: Path) -> None:
    topic, value, _ = load_vector(path)
    outcome = classifier.classify(topic, value)
    assert isinstance(outcome, Accepted), outcome
    assert outcome.event.event_id == json.loads(value)["event_id"]


@pytest.mark.parametrize("path", vectors("invalid"), ids=lambda p: p.stem)
def test_invalid_vectors_get_exactly_their_reason(path: Path) -> None:
    topic, value, reason = load_vector(path)
    outcome = classifier.classify(topic, value)
    assert isinstance(outcome, Rejected)
    assert outcome.reason == reason


def _warrant(**changes: Any) -> bytes:
    base = json.loads((CONTRACT_VECTORS / "valid" / "warrant-proactive.json").read_text())["value"]
    base.update(changes)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"version": True}, "schema", "version"),
        ({"version": 1.0}, "schema", "version"),
        ({"version": "1"}, "schema", "version"),
        ({"operation": None}, "schema", "operation"),
        ({"operation": ...}, None, None),
        ({"occurred_at": "2025-04-03 06:15:00Z"}, "schema", "occurred_at"),
        ({"occurred_at": "2025-04-03T06:15:00z"}, None, None),
        ({"occurred_at": "2025-02-30T06:15:00Z"}, "schema", "occurred_at"),
        ({"occurred_at": "1999-12-31T23:59:59Z"}, "schema", "occurred_at"),
        ({"occurred_at": 1743660900}, "schema", "occurred_at"),
        ({"occurred_at": "２０２５-04-03T06:15:00Z"}, "schema", "occurred_at"),
        ({"force": "lancashіre"}, "schema", "force"),  # Cyrillic i
        ({"force": "LANCASHIRE"}, "schema", "force"),
        ({"division": "west\n"}, "schema", "division"),
        ({"event_id": "a" * 129}, "schema", "event_id"),
        ({"event_id": "a" * 128}, None, None),
        ({"type": "warrant.planned"}, "schema", "type"),
        ({"origin": "Proactive"}, "schema", "origin"),
        ({"Name": "x"}, "schema", None),
        ({"source": ...}, "schema", "source"),
    ],
)
def test_strictness(changes: dict[str, Any], reason: str | None, field: str | None) -> None:
    outcome = classifier.classify("ops.warrants", _warrant(**changes))
    if reason is None:
        assert isinstance(outcome, Accepted), outcome
    else:
        assert isinstance(outcome, Rejected)
        assert (outcome.reason, outcome.field) == (reason, field)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "malformed"),
        (b"", "malformed"),
        (b'{"a": 1, "a": 2}', "malformed"),
        (b'{"version": NaN}', "malformed"),
        (b'{"version": Infinity}', "malformed"),
        (b"[" * 60_000, "malformed"),
        (b'{"version": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "malformed"),
        (b'{"persons": ' + b"9" * 5000 + b"}", "schema"),
        (b'"just a string"', "malformed"),
        (b"\xef\xbb\xbf{}", "malformed"),
        (b"x" * (64 * 1024 + 1), "too_large"),
    ],
)
def test_hostile_bytes(raw: bytes | None, reason: str) -> None:
    outcome = classifier.classify("ops.warrants", raw)
    assert isinstance(outcome, Rejected)
    assert outcome.reason == reason


def test_future_tolerance_is_five_minutes() -> None:
    ahead = (NOW + timedelta(minutes=4, seconds=59)).isoformat()
    too_far = (NOW + timedelta(minutes=5, seconds=1)).isoformat()
    assert isinstance(classifier.classify("ops.warrants", _warrant(occurred_at=ahead)), Accepted)
    outcome = classifier.classify("ops.warrants", _warrant(occurred_at=too_far))
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "future"


def test_rejection_never_echoes_unknown_keys_or_values() -> None:
    outcome = classifier.classify("ops.warrants", _warrant(**{"John Smith": "DOB 1980-01-01"}))
    assert isinstance(outcome, Rejected)
    assert "John" not in outcome.detail
    assert outcome.field is None


def test_topic_prefix_is_configurable() -> None:
    other = Classifier.for_prefix("force-a.", LANCASHIRE, clock=lambda: NOW)
    assert isinstance(other.classify("force-a.warrants", _warrant()), Accepted)
    rejected = other.classify("ops.warrants", _warrant())
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "type_mismatch"
