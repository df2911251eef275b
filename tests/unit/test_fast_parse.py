"""The stream's fast paths decide exactly as the reference code they replace.

``parse_object`` (orjson with a canonical re-encoding check) against ``parse_strict``
(the standard library with duplicate-key, constant and integer checks), and
``murmur2_fast`` and ``murmur2_many`` against kafka-python's ``murmur2``, and
``LocalDates`` against ``astimezone``, on generated inputs.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2

from services.contract.classify import flat_canonical, parse_object, parse_strict
from services.contract.events import KNOWN_FIELDS, ReferralReceived
from streams.counter import LocalDates, murmur2_fast, murmur2_many

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 5, max_value=2**64 + 5)
    | st.integers(min_value=-(2**64), max_value=-(2**63) + 5)
    | st.floats()
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(sorted(KNOWN_FIELDS)) | st.text(max_size=12)
flat_objects = st.lists(st.tuples(keys, scalars), max_size=12)


def _outcome(parse: Any, raw: bytes) -> Any:
    try:
        return ("ok", parse(raw))
    except ValueError as exc:
        return ("error", str(exc))


def _same(raw: bytes) -> None:
    fast, strict = _outcome(parse_object, raw), _outcome(parse_strict, raw)
    # NaN is refused by both parsers, so == is a fair comparison of parsed objects.
    assert fast == strict


def _encodings(pairs: list[tuple[str, Any]]) -> list[bytes]:
    """The same members written by several encoders (duplicates kept)."""
    out = []
    for sep, ascii_ in (((",", ":"), False), ((", ", ": "), True), ((",", ":"), True)):
        body = sep[0].join(
            json.dumps(k, ensure_ascii=ascii_) + sep[1] + json.dumps(v, ensure_ascii=ascii_)
            for k, v in pairs
        )
        out.append(("{" + body + "}").encode("utf-8", errors="surrogatepass"))
    with contextlib.suppress(TypeError):  # an integer out of orjson's range
        out.append(orjson.dumps(dict(pairs)))
    return out


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(flat_objects)
def test_flat_objects_parse_the_same(pairs: list[tuple[str, Any]]) -> None:
    for raw in _encodings(pairs):
        _same(raw)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(json_values)
def test_any_json_parses_the_same(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, separators=(",", ":"), ensure_ascii=False)):
        _same(text.encode("utf-8", errors="surrogatepass"))
    with contextlib.suppress(TypeError):
        _same(orjson.dumps(value))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_the_same(raw: bytes) -> None:
    _same(raw)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    field=st.sampled_from(sorted(KNOWN_FIELDS)),
    value=scalars,
    position=st.integers(min_value=0, max_value=12),
)
def test_real_events_with_a_repeated_field_parse_the_same(
    field: str, value: Any, position: int
) -> None:
    event = ReferralReceived(
        version=1,
        event_id="ref-20250912-0007",
        type="referral.received",
        occurred_at=datetime(2025, 9, 12, 9, 30, tzinfo=UTC),
        force="lancashire",
        division="south",
        source="referral-intake",
        referrer="nca",
        risk="high",
    )
    canonical = orjson.dumps(event.to_wire())
    assert parse_object(canonical) == parse_strict(canonical)
    pairs = list(event.to_wire().items())
    pairs.insert(min(position, len(pairs)), (field, value))
    for raw in _encodings(pairs):
        _same(raw)


def test_deep_nesting_parses_the_same() -> None:
    for depth in (10, 500, 900, 1000, 1100):
        _same(b'{"a":' + b"[" * depth + b"]" * depth + b"}")


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_murmur2_fast_is_kafkas_murmur2(data: bytes) -> None:
    assert murmur2_fast(data) == murmur2(data) & 0xFFFFFFFF


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.binary(max_size=140), max_size=40) | st.lists(st.binary(min_size=36, max_size=36))
)
def test_murmur2_many_is_kafkas_murmur2(keys: list[bytes]) -> None:
    assert murmur2_many(keys) == [murmur2(k) & 0xFFFFFFFF for k in keys]


# Zones with DST, half-hour and 45-minute offsets, a 30-minute DST shift, a date-line jump.
ZONES = [
    "Europe/London",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "America/Santiago",
    "UTC",
]
instants = st.integers(
    min_value=int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1_000_000),
    max_value=int(datetime(2040, 1, 1, tzinfo=UTC).timestamp() * 1_000_000),
)


def _around_transitions(zone: ZoneInfo, years: range) -> list[datetime]:
    """Instants within a second of every offset change and local midnight in ``years``."""
    out = []
    t = datetime(years.start, 1, 1, tzinfo=UTC)
    step = timedelta(hours=1)
    previous = t.astimezone(zone)
    while t.year < years.stop:
        t += step
        local = t.astimezone(zone)
        if local.utcoffset() != previous.utcoffset() or local.date() != previous.date():
            for m in range(0, 61, 5):
                for us in (-1_000_001, -1, 0, 1):
                    out.append(t - step + timedelta(minutes=m, microseconds=us))
        previous = local
    return out


def test_local_dates_near_every_transition() -> None:
    for name in ZONES:
        zone = ZoneInfo(name)
        dates = LocalDates(zone)
        for t in _around_transitions(zone, range(2000, 2003)) + _around_transitions(
            zone, range(2011, 2013)
        ):
            for occurred in (t, t.astimezone(zone), t.astimezone(ZoneInfo("Asia/Tokyo"))):
                assert dates.ordinal(occurred) == occurred.astimezone(zone).date().toordinal()


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(ZONES), st.lists(instants, min_size=1, max_size=20))
def test_local_dates_is_astimezone(name: str, micros: list[int]) -> None:
    zone = ZoneInfo(name)
    dates = LocalDates(zone)
    for us in micros:
        occurred = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
        assert dates.ordinal(occurred) == occurred.astimezone(zone).date().toordinal()


def test_flat_canonical_objects_skip_the_strict_parser_and_others_do_not() -> None:
    canonical = b'{"version":1,"event_id":"ref-20250912-0007","n":-2.5,"b":true,"z":null}'
    bracketed = [
        b'{"a":"x[y"}',
        b'{"a":"{"}',
        b'{"a":[]}',
        b'{"a":{}}',
        b'{"a":1,"a":1}',
        b'{"a": 1}',
        b'{"a":"\\u0041"}',
    ]
    # The fast path's own test, not a patch of parse_strict (compiled code would call it
    # past any patch; docs/performance.md, change 25).
    assert flat_canonical(orjson.loads(canonical), canonical)
    assert parse_object(canonical) == parse_strict(canonical)
    for raw in bracketed:
        assert not flat_canonical(orjson.loads(raw), raw), raw
    for raw in [canonical, *bracketed]:
        _same(raw)
