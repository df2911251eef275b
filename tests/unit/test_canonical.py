"""The validated fast path (``construct_valid``) decides exactly as full pydantic validation.

For every object it accepts, full validation accepts too and builds an equal model
(same class, field values and types, field order, fields set, dumps); it accepts the
plain valid shapes (so the fast path is used); and the classifier's outcome, with the
fast path and without, is the same for every contract vector and every generated
object: valid ones, one to three fields changed to near-valid or wrong values, fields
dropped or added, random values, and timestamps of every offset and precision.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.contract.canonical import construct_valid
from services.contract.classify import Classifier
from services.contract.events import (
    EVENT_ADAPTER,
    KNOWN_FIELDS,
    ORIGINS,
    REFERRERS,
    RISKS,
    TOPIC_OF,
    EventType,
)
from tests.conftest import CONTRACT_VECTORS, load_vector

SHARED_VECTORS = Path(__file__).resolve().parents[3] / "shared" / "contract" / "examples"
DIVISIONS = {"lancashire": ["east", "south", "west"], "ab": ["cd", "a-1"]}
NOW = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
classifier = Classifier.for_prefix("ops.", DIVISIONS, clock=lambda: NOW)
# Full validation only (no fast path): the reference. A switch, not a patch of
# construct_valid (compiled code would call it past any patch; performance.md, change 25).
reference = Classifier.for_prefix("ops.", DIVISIONS, clock=lambda: NOW, fast_path=False)
TOPIC_OF_TYPE = {t.value: f"ops.{short}" for t, short in TOPIC_OF.items()}
TYPE_FIELDS = {
    "warrant.executed": ("origin",),
    "arrest.made": ("persons", "origin", "previously_known"),
    "safeguarding.action": ("children",),
    "referral.received": ("referrer", "risk"),
}


def _full(obj: Any) -> Any:
    try:
        return EVENT_ADAPTER.validate_python(obj)
    except ValidationError:
        return None


def _same_decision(obj: Any) -> Any:
    """Check the fast path against full validation on ``obj``; return the fast result."""
    fast, full = construct_valid(obj), _full(obj)
    if fast is not None:
        assert full is not None, obj
        assert type(fast) is type(full)
        assert fast == full
        assert list(fast.__dict__.items()) == list(full.__dict__.items())
        assert [type(v) for v in fast.__dict__.values()] == [
            type(v) for v in full.__dict__.values()
        ]
        assert fast.model_fields_set == full.model_fields_set
        assert fast.__pydantic_extra__ == full.__pydantic_extra__
        assert fast.__pydantic_private__ == full.__pydantic_private__
        assert fast.occurred_at.tzinfo == full.occurred_at.tzinfo
        assert fast.occurred_at.utcoffset() == full.occurred_at.utcoffset()
        assert fast.to_wire() == full.to_wire()
        assert fast.model_dump_json() == full.model_dump_json()
        assert hash(fast) == hash(full)
    return fast


def _outcomes(topic: str, raw: bytes) -> tuple[Any, Any]:
    """The classifier's outcome with the fast path, and with full validation only."""
    with_fast = classifier.classify(topic, raw)
    without = reference.classify(topic, raw)
    return with_fast, without


def _check(obj: Any) -> Any:
    fast = _same_decision(obj)
    raw = json.dumps(obj).encode("utf-8", errors="surrogatepass")
    kind = obj.get("type")
    topic = TOPIC_OF_TYPE.get(kind, "ops.warrants") if isinstance(kind, str) else "ops.arrests"
    with_fast, without = _outcomes(topic, raw)
    assert with_fast == without
    return fast


# Timestamps: every precision and offset, valid and not, and the edges of the format.
def _stamp(t: datetime, digits: int, offset: str, sep: str) -> str:
    base = t.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    fraction = f"{t.microsecond:06d}{t.microsecond % 1000:03d}"[:digits]
    return base + (f".{fraction}" if digits else "") + offset


offsets = st.one_of(
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "", "+0100", "+01", "+01:00:00", " Z"]),
    st.builds(
        lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
        st.sampled_from("+-"),
        st.integers(0, 25),
        st.integers(0, 61),
    ),
)
valid_instants = st.datetimes(
    min_value=datetime(1999, 12, 30), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
stamps = st.one_of(
    st.builds(
        _stamp,
        valid_instants,
        st.integers(0, 10),
        offsets,
        st.sampled_from(["T", "t", " ", "_"]),
    ),
    st.builds(
        lambda t, m, spec: t.astimezone(timezone(timedelta(minutes=m))).isoformat(timespec=spec),
        valid_instants,
        st.integers(-24 * 60 + 1, 24 * 60 - 1),
        st.sampled_from(["auto", "seconds", "milliseconds", "microseconds", "minutes"]),
    ),
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
        fullmatch=True,
    ),
    st.sampled_from(
        [
            "2000-01-01T00:00:00Z",
            "2000-01-01T00:00:00+00:01",
            "2000-01-01T00:30:00+01:00",
            "1999-12-31T23:59:59.999999999Z",
            "1999-12-31T23:00:00-01:00",
            "2025-02-29T00:00:00Z",
            "2024-02-29T00:00:00Z",
            "2025-04-03T24:00:00Z",
            "2025-04-03T23:59:60Z",
            "２０２５-04-03T06:15:00Z",
            "2025-04-03T06:15:00Z\n",
            "2025-04-03T06:15:00+01:00",
            "2025-04-03T06:15:00.1+05:30",
            "2025-04-03T06:15:00.123456789-09:30",
            "2025-04-03",
            "",
        ]
    ),
    st.text(max_size=40),
)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _slugs(low: int, high: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.from_regex(rf"[a-z0-9-]{{{low},{high}}}", fullmatch=True),
        st.sampled_from(
            ["a" * (low - 1), "a" * high, "a" * (high + 1), "ab\n", "AB", "a_b", "lancashіre"]
        ),
        st.text(max_size=high + 2),
    )


VALID: dict[str, st.SearchStrategy[Any]] = {
    "version": st.just(1),
    "event_id": st.from_regex(r"[A-Za-z0-9._:-]{8,128}", fullmatch=True),
    "occurred_at": st.builds(
        lambda t, m, digits: _stamp(
            t.astimezone(timezone(timedelta(minutes=m))),
            digits,
            t.astimezone(timezone(timedelta(minutes=m))).strftime("%:z") if m else "Z",
            "T",
        ),
        st.datetimes(
            min_value=datetime(2000, 1, 2), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
        ),
        st.integers(-23 * 60, 23 * 60),
        st.integers(0, 9),
    ),
    "force": st.sampled_from(sorted(DIVISIONS)) | st.from_regex(r"[a-z0-9-]{2,40}", fullmatch=True),
    "division": st.sampled_from(["east", "south", "west", "cd"]),
    "operation": st.from_regex(r"[a-z0-9-]{1,64}", fullmatch=True),
    "source": st.from_regex(r"[a-z0-9-]{2,64}", fullmatch=True),
    "origin": st.sampled_from(ORIGINS),
    "persons": st.integers(1, 50),
    "previously_known": st.booleans(),
    "children": st.integers(1, 100),
    "referrer": st.sampled_from(REFERRERS),
    "risk": st.sampled_from(RISKS),
}
NEAR: dict[str, st.SearchStrategy[Any]] = {
    "version": st.sampled_from([1.0, True, "1", 0, 2, -1, None, 2**64]),
    "event_id": st.one_of(
        st.sampled_from(["a" * 7, "a" * 129, "abcdefgh\n", "abcd efgh", "abcdefgİ", "abc/defgh"]),
        st.text(max_size=140),
    ),
    "occurred_at": stamps,
    "force": _slugs(2, 40),
    "division": _slugs(2, 40),
    "operation": _slugs(1, 64) | st.none(),
    "source": _slugs(2, 64),
    "type": st.sampled_from([*TYPE_FIELDS, "warrant.planned", "Arrest.made", "", None, 1]),
    "origin": st.sampled_from(["Proactive", "proactive ", "", "nca", None, 1]),
    "persons": st.sampled_from([0, 51, -1, 1.0, 2.0, True, "2", None, 2**64]),
    "previously_known": st.sampled_from([0, 1, "true", None, 1.0]),
    "children": st.sampled_from([0, 101, 1.0, True, False, "3", None]),
    "referrer": st.sampled_from(["NCA", "nca ", "", "proactive", None, 0]),
    "risk": st.sampled_from(["HIGH", "very high", "", None, 0]),
}


@st.composite
def valid_objects(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(TYPE_FIELDS)))
    names = ["version", "event_id", "occurred_at", "force", "division", "source"]
    if draw(st.booleans()):
        names.append("operation")
    names += TYPE_FIELDS[kind]
    obj = {name: draw(VALID[name]) for name in names}
    obj["type"] = kind
    items = list(obj.items())
    return dict(draw(st.permutations(items)))


@st.composite
def changed_objects(draw: st.DrawFn) -> dict[str, Any]:
    obj = draw(valid_objects())
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["near", "junk", "drop", "add", "add-known"]))
        name = draw(st.sampled_from(sorted(obj)))
        if action == "near":
            obj[name] = draw(NEAR.get(name, junk))
        elif action == "junk":
            obj[name] = draw(junk)
        elif action == "drop":
            del obj[name]
        elif action == "add":
            obj[draw(st.text(max_size=12))] = draw(junk)
        else:
            extra = draw(st.sampled_from(sorted(KNOWN_FIELDS)))
            obj[extra] = draw(VALID.get(extra, NEAR.get(extra, junk)))
    return obj


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(valid_objects())
def test_valid_objects_take_the_fast_path_to_the_same_event(obj: dict[str, Any]) -> None:
    fast = _check(obj)
    full = _full(obj)
    if full is not None and full.occurred_at.year < 9999:
        assert fast is not None, obj


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(changed_objects())
def test_changed_objects_decide_the_same(obj: dict[str, Any]) -> None:
    _check(obj)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(sorted(KNOWN_FIELDS)) | st.text(max_size=12),
        junk | st.sampled_from(sorted(TYPE_FIELDS)) | st.just(1),
        max_size=14,
    )
)
def test_random_objects_decide_the_same(obj: dict[str, Any]) -> None:
    _check(obj)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(stamps)
def test_timestamps_decide_the_same(stamp: str) -> None:
    obj = {
        "version": 1,
        "event_id": "ref-20250912-0007",
        "type": "referral.received",
        "occurred_at": stamp,
        "force": "lancashire",
        "division": "south",
        "source": "referral-intake",
        "referrer": "nca",
        "risk": "high",
    }
    fast = _check(obj)
    assert (fast is None) == (_full(obj) is None)


def _slug_edges(low: int, high: int) -> list[Any]:
    return [
        "a" * (low - 1),
        "a" * low,
        "a" * high,
        "a" * (high + 1),
        "0-9" * (high // 3),
        "AB",
        "a_b",
        "ab\n",
        "\nab",
        "ab ",
        "lancashіre",
        "ａb",
        1,
        None,
        True,
        ["ab"],
    ]


# For each field: values at and around the edges of its rule, valid and not.
EDGES: dict[str, list[Any]] = {
    "version": [1, 0, 2, -1, 1.0, True, False, "1", None, 2**64, [1]],
    "event_id": [
        "a" * 8,
        "a" * 7,
        "a" * 128,
        "a" * 129,
        "A.b_c:d-9",
        "abcdefgh\n",
        "\nabcdefgh",
        "abcd efgh",
        "abcdefgİ",
        "abc/defgh",
        "ａbcdefgh",
        "",
        12345678,
        None,
    ],
    "occurred_at": [
        "2025-04-03T06:15:00Z",
        "2025-04-03T06:15:00z",
        "2025-04-03t06:15:00+01:00",
        "2025-04-03T06:15:00.5-09:30",
        "2025-04-03T06:15:00.123456789+14:00",
        "2025-04-03T06:15:00.1234567890Z",
        "2025-04-03T06:15:00.Z",
        "2025-04-03T06:15:00",
        "2025-04-03T06:15Z",
        "2025-04-03 06:15:00Z",
        "2025-04-03T06:15:00+0100",
        "2025-04-03T06:15:00+01:00:00",
        "2025-04-03T06:15:00+24:00",
        "2025-04-03T06:15:00-23:59",
        "2000-01-01T00:00:00Z",
        "2000-01-01T00:59:59+01:00",
        "1999-12-31T23:59:59.999999Z",
        "2025-02-29T06:15:00Z",
        "2025-04-03T24:00:00Z",
        "２０２５-04-03T06:15:00Z",
        1743660900,
        None,
    ],
    "force": _slug_edges(2, 40),
    "division": [*_slug_edges(2, 40), "east", "south", "west"],
    "operation": _slug_edges(1, 64),
    "source": _slug_edges(2, 64),
    "type": [*TYPE_FIELDS, "warrant.planned", "Arrest.made", "", None, 1],
    "origin": [*ORIGINS, "Proactive", "proactive ", "", "nca", None, 1, True],
    "persons": [1, 2, 49, 50, 0, 51, -1, 1.0, 2.0, True, False, "2", None, 2**64],
    "previously_known": [True, False, 0, 1, "true", None, 1.0],
    "children": [1, 100, 0, 101, 1.0, True, False, "3", None],
    "referrer": [*REFERRERS, "NCA", "nca ", "", "proactive", None, 0],
    "risk": [*RISKS, "HIGH", "very high", "", "nca", None, 0],
}


def _base(kind: str) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "version": 1,
        "event_id": "ref-20250912-0007",
        "type": kind,
        "occurred_at": "2025-09-12T09:30:00+01:00",
        "force": "lancashire",
        "division": "south",
        "source": "referral-intake",
    }
    valid = {"origin": "referral", "persons": 3, "previously_known": True, "children": 2}
    valid |= {"referrer": "nca", "risk": "high"}
    return obj | {name: valid[name] for name in TYPE_FIELDS[kind]}


@pytest.mark.parametrize("kind", sorted(TYPE_FIELDS))
def test_every_field_at_its_edges_decides_the_same(kind: str) -> None:
    accepted = 0
    for operation in (False, True):
        base = _base(kind) | ({"operation": "op-sentinel"} if operation else {})
        assert _check(base) is not None
        for name in sorted(set(base) | KNOWN_FIELDS):
            for value in EDGES[name]:
                accepted += _check(base | {name: value}) is not None
            dropped = _check({k: v for k, v in base.items() if k != name})
            assert (dropped is None) == (name in base and name != "operation")
        assert _check(base | {"name": "x"}) is None
    assert accepted > 20


def _vectors() -> list[Path]:
    paths = sorted(CONTRACT_VECTORS.glob("*/*.json"))
    if SHARED_VECTORS.is_dir():
        paths += sorted(SHARED_VECTORS.glob("*/*.json"))
    return paths


@pytest.mark.parametrize("path", _vectors(), ids=lambda p: f"{p.parent.parent.name}-{p.stem}")
def test_contract_vectors_decide_the_same(path: Path) -> None:
    topic, raw, _ = load_vector(path)
    with_fast, without = _outcomes(topic, raw)
    assert with_fast == without
    try:
        obj = json.loads(raw)
    except ValueError:
        return
    fast = _same_decision(obj)
    if path.parent.name == "valid":
        assert fast is not None


def test_non_dict_mappings_and_subclasses_take_the_full_path() -> None:
    class Str(str):
        pass

    obj = json.loads(load_vector(CONTRACT_VECTORS / "valid" / "warrant-proactive.json")[1])
    assert construct_valid(obj) is not None
    assert construct_valid(dict(obj, origin=Str("proactive"))) is None
    assert construct_valid(dict(obj, type=EventType.WARRANT)) is None
    assert construct_valid(dict(obj, force=Str("lancashire"))) is None
    assert construct_valid(list(obj.items())) is None  # type: ignore[arg-type]
