"""Choosing dead letters to replay (services/deadletter.py), without a broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from opsmetrics.settings import Settings
from services.contract.events import RejectReason
from services.deadletter import DeadLetter, replay, select

T0 = datetime(2025, 9, 1, 12, 0, tzinfo=UTC)


def _letter(offset: int, reason: str, topic: str, minutes: int) -> DeadLetter:
    return DeadLetter(
        partition=0,
        offset=offset,
        timestamp=T0 + timedelta(minutes=minutes),
        key=b"k",
        value=b"{}",
        source_topic=topic,
        source_partition="1",
        source_offset=str(offset),
        reason=reason,
        field="division",
    )


LETTERS = [
    _letter(0, "unknown_division", "ops.arrests", 0),
    _letter(1, "unknown_division", "ops.referrals", 10),
    _letter(2, "schema", "ops.arrests", 20),
    _letter(3, "unknown_division", "ops.arrests", 30),
]


def _offsets(
    source_topic: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> list[int]:
    chosen = select(iter(LETTERS), RejectReason.UNKNOWN_DIVISION, source_topic, since, until)
    return [d.offset for d in chosen]


def test_select_by_reason_topic_and_time() -> None:
    assert _offsets() == [0, 1, 3]
    assert _offsets(source_topic="ops.arrests") == [0, 3]
    assert _offsets(since=T0 + timedelta(minutes=10)) == [1, 3]
    assert _offsets(until=T0 + timedelta(minutes=10)) == [0]  # until is exclusive
    assert _offsets(since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=31)) == [1, 3]


def test_ledger_key_is_the_source_position() -> None:
    assert LETTERS[1].ledger_key == "ops.referrals:1:1"


def test_replay_refuses_a_topic_that_is_not_an_event_topic() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1")  # never contacted
    with pytest.raises(ValueError, match="not an event topic"):
        replay(settings, RejectReason.SCHEMA, source_topic="ops.deadletter")
