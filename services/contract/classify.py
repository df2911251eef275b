"""One function decides the fate of every raw Kafka message.

:meth:`Classifier.classify` turns (topic, value bytes) into :class:`Accepted` with a
validated event, or :class:`Rejected` with one of the contract's reasons. The
publishing tools, the ingest API and the stream all call this same code, so
nothing our own tools publish can be rejected downstream.

Checks run in this order: ``too_large``, ``malformed``, ``schema``,
``type_mismatch``, ``unknown_division``, ``future``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from pydantic import ValidationError

from services.contract.canonical import construct_valid
from services.contract.events import (
    EVENT_ADAPTER,
    KNOWN_FIELDS,
    TOPIC_OF,
    ArrestMade,
    Event,
    EventType,
    ReferralReceived,
    RejectReason,
    SafeguardingAction,
    WarrantExecuted,
)

MAX_VALUE_BYTES: Final = 64 * 1024
_MAX_INT_DIGITS: Final = 400


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message that passed every check."""

    event: WarrantExecuted | ArrestMade | SafeguardingAction | ReferralReceived


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that failed a check.

    ``field`` names the contract field at fault (never a value, never an unknown
    key, which could itself be personal data); ``detail`` says what is wrong.
    """

    reason: RejectReason
    field: str | None
    detail: str


Outcome = Accepted | Rejected


class _Malformed(Exception):
    pass


class _Unrepresentable:
    """Stands in for a JSON integer too long to convert; fails every field check."""

    __slots__ = ()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Malformed("an object has a duplicate key")
    return obj


def _no_constants(name: str) -> Any:
    raise _Malformed(f"{name} is not JSON")


def _bounded_int(text: str) -> Any:
    return int(text) if len(text) <= _MAX_INT_DIGITS else _Unrepresentable()


def parse_object(value: bytes) -> dict[str, Any]:
    """Decode strict UTF-8 JSON holding one object; raise ValueError if it is not one.

    Duplicate keys, ``NaN`` and ``Infinity`` are refused: they are not well-defined JSON.
    Fast path: a flat object in canonical compact form (what every publisher of ours
    sends) re-encodes to exactly its own bytes; then it has no duplicate key, no
    constant, no out-of-range number, and orjson read it exactly as the strict parser
    would (tests/unit/test_fast_parse.py checks this against :func:`parse_strict`).
    """
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return parse_strict(value)
    if type(obj) is dict and flat_canonical(obj, value):
        return obj
    return parse_strict(value)


def flat_canonical(obj: dict[str, Any], value: bytes) -> bool:
    """Whether ``obj``, orjson's reading of ``value``, is a flat object whose canonical
    compact form is exactly ``value`` (then :func:`parse_object` keeps it)."""
    # Flat: no "[" anywhere and no "{" after the first byte (bytes searches, cheaper
    # than looking at each value; a string holding one takes the strict path).
    return value.find(b"{", 1) < 0 and b"[" not in value and orjson.dumps(obj) == value


def parse_strict(value: bytes) -> dict[str, Any]:
    """:func:`parse_object` without its fast path (the reference behaviour)."""
    try:
        text = value.decode("utf-8")
        obj = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_int=_bounded_int,
        )
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    except _Malformed as exc:
        raise ValueError(str(exc)) from None
    except (json.JSONDecodeError, RecursionError, ValueError):
        raise ValueError("not valid JSON") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


def _schema_rejection(exc: ValidationError) -> Rejected:
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = [str(part) for part in err["loc"]]
    # With a discriminated union the first loc part is the type tag; skip it.
    if loc and loc[0] in {t.value for t in EventType}:
        loc = loc[1:]
    field = loc[0] if loc else None
    if err["type"] == "extra_forbidden" or (field is not None and field not in KNOWN_FIELDS):
        return Rejected(RejectReason.SCHEMA, None, "a field the contract does not allow")
    if err["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        return Rejected(RejectReason.SCHEMA, "type", "type must be one of the four event types")
    return Rejected(RejectReason.SCHEMA, field, str(err["msg"]))


class Classifier:
    """Classifies raw messages against the contract and the configured forces.

    ``topics`` maps a full topic name to the event type it carries;
    ``divisions`` maps each configured force to its divisions. ``fast_path=False``
    validates every object with pydantic (the reference the fast path is tested against).
    """

    def __init__(
        self,
        topics: Mapping[str, EventType],
        divisions: Mapping[str, Iterable[str]],
        future_tolerance: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fast_path: bool = True,
    ) -> None:
        self._topics = dict(topics)
        self._fast_path = fast_path
        self._divisions = {force: frozenset(divs) for force, divs in divisions.items()}
        self._future_tolerance = future_tolerance
        self._clock = clock

    @classmethod
    def for_prefix(
        cls,
        prefix: str,
        divisions: Mapping[str, Iterable[str]],
        future_tolerance: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fast_path: bool = True,
    ) -> Classifier:
        """A classifier for the contract topics under ``prefix`` (e.g. ``ops.``)."""
        topics = {f"{prefix}{short}": etype for etype, short in TOPIC_OF.items()}
        return cls(topics, divisions, future_tolerance, clock, fast_path)

    def classify(self, topic: str, value: bytes | None, now: datetime | None = None) -> Outcome:
        """Decide whether a message from ``topic`` is an acceptable event."""
        if value is None:
            return Rejected(RejectReason.MALFORMED, None, "empty message (no value)")
        if len(value) > MAX_VALUE_BYTES:
            return Rejected(RejectReason.TOO_LARGE, None, f"value over {MAX_VALUE_BYTES} bytes")
        try:
            obj = parse_object(value)
        except ValueError as exc:
            return Rejected(RejectReason.MALFORMED, None, str(exc))
        return self.classify_object(topic, obj, now)

    def classify_object(
        self, topic: str, obj: Mapping[str, Any], now: datetime | None = None
    ) -> Outcome:
        """The checks after parsing, for callers that already hold a JSON object."""
        # The common, plainly valid shape skips pydantic (canonical.py); the rest, and
        # every rejection, goes through full validation.
        event: Event | None = construct_valid(obj) if self._fast_path else None
        if event is None:
            try:
                event = EVENT_ADAPTER.validate_python(obj)
            except ValidationError as exc:
                return _schema_rejection(exc)
        expected = self._topics.get(topic)
        if expected is None or expected.value != event.type:
            return Rejected(
                RejectReason.TYPE_MISMATCH, "type", f"type {event.type} does not belong on {topic}"
            )
        divisions = self._divisions.get(event.force)
        if divisions is None:
            return Rejected(RejectReason.UNKNOWN_DIVISION, "force", "force is not configured")
        if event.division not in divisions:
            return Rejected(
                RejectReason.UNKNOWN_DIVISION, "division", "division is not configured for force"
            )
        current = now or self._clock()
        if event.occurred_at > current + self._future_tolerance:
            return Rejected(
                RejectReason.FUTURE, "occurred_at", "occurred_at is too far ahead of the clock"
            )
        return Accepted(event)
