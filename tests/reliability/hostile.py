"""Hostile messages, each built with exactly one defect and the reason it must get.

:func:`hostile_case` draws one message from a ``random.Random``: hypothesis drives it
through ``st.randoms()`` (fuzzing the classifier and the agent's logic), and the
broker test draws a fixed sample from a seeded generator. A case whose bytes end up
over the size limit expects ``too_large`` whatever its defect (that check runs first).

The reasons are derived from the contract (docs/contract.md), not from the code
under test: a defect is built so that exactly one rule of the contract is broken.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from services.contract.classify import MAX_VALUE_BYTES
from services.contract.events import TOPIC_OF, EventType
from tests.reliability.common import make_event

#: Characters that look like ASCII letters of slugs but are not ASCII.
LOOKALIKES: Final = {
    "a": ["\u0430", "\u0251", "\uff41", "\U0001d41a"],  # Cyrillic а, Latin alpha, fullwidth, bold
    "e": ["\u0435", "\u0113", "\uff45"],  # Cyrillic е, e macron, fullwidth
    "i": ["\u0456", "\u0131", "\u00ed", "\u2170"],  # Cyrillic і, dotless ı, í, roman numeral
    "o": ["\u043e", "\u03bf", "\u2134"],  # Cyrillic о, Greek omicron, script o
    "s": ["\u0455", "\ua731"],  # Cyrillic ѕ, small capital s
    "t": ["\u0442", "\u1d1b"],
    "l": ["\u04cf", "\u217c", "\u0406"],  # palochka, roman numeral fifty, Cyrillic І
    "n": ["\u0578", "\u043f"],
    "r": ["\u0433", "\u1d26"],
    "h": ["\u04bb"],
    "c": ["\u0441", "\u217d"],
    "w": ["\u051d", "\u0461"],
    "-": ["\u2010", "\u2011", "\u2212", "\u00ad"],  # hyphens, minus sign, soft hyphen
}
INVISIBLE: Final = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u0301", "\u0308"]

SHORT_TOPICS: Final = tuple(TOPIC_OF[t] for t in EventType)
PERSONAL: Final = "Jonathan Quixmarker, born 1987-03-14, 12 Acacia Avenue"


@dataclass(frozen=True)
class Case:
    """One message and what the stream must do with it."""

    kind: str
    topic: str  # short topic name: warrants, arrests, safeguarding, referrals
    key: bytes | None
    value: bytes | None
    reason: str | None  # expected rejection reason; None: a valid event (counted)
    event: Any = None  # the valid event, when reason is None


def _base(rng: random.Random, forces: dict[str, list[str]], now: datetime, n: int) -> Any:
    at = now - timedelta(seconds=rng.uniform(60, 90 * 86400))
    return make_event(rng, forces, f"hostile-{n:06d}-{rng.randrange(10**9)}", at)


def _topic_of(event: Any) -> str:
    return TOPIC_OF[EventType(event.type)]


def _lookalike(rng: random.Random, slug: str) -> str:
    chars = list(slug)
    spots = [i for i, c in enumerate(chars) if c in LOOKALIKES]
    if spots and rng.random() < 0.8:
        i = rng.choice(spots)
        chars[i] = rng.choice(LOOKALIKES[chars[i]])
    else:
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(INVISIBLE))
    return "".join(chars)


def _nest(rng: random.Random, depth: int) -> str:
    if rng.random() < 0.5:
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


Built = tuple[str, bytes | None, str]  # kind, value, expected reason
Mutation = Callable[[random.Random, dict[str, Any], Any], Built]


def m_random_bytes(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    while True:
        raw = rng.randbytes(rng.randrange(0, 400))
        try:
            parsed = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return "random_bytes", raw, "malformed"
        if not isinstance(parsed, dict):
            return "random_bytes", raw, "malformed"


def m_not_an_object(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    value = rng.choice(
        [b"", b"null", b"true", b"42", b'"text"', b"[]", json.dumps([wire]).encode(), b"  "]
    )
    return "not_an_object", value, "malformed"


def m_no_value(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    return "no_value", None, "malformed"


def m_truncated(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    raw = json.dumps(wire).encode()
    return "truncated", raw[: rng.randrange(1, len(raw) - 1)], "malformed"


def m_deep_nesting(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    if rng.random() < 0.5:  # too deep to parse: malformed (or too large)
        nested = _nest(rng, rng.randrange(5_000, 40_000))
        reason = "malformed"
    else:  # shallow nesting in a string field: parses, breaks the schema
        nested = _nest(rng, rng.randrange(2, 40))
        reason = "schema"
    field = rng.choice(["operation", "division", "source", "event_id", "surprise"])
    body = {k: v for k, v in wire.items() if k != field}
    obj_text = json.dumps(body)[:-1] + f', "{field}": {nested}}}'
    if rng.random() < 0.3:  # or the whole message is nesting: never an object
        depth = rng.randrange(1, 40_000)
        obj_text = "[" * depth + "]" * depth
        reason = "malformed"
    return "deep_nesting", obj_text.encode(), reason


def m_huge_number(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    digits = rng.choice([20, 60, 399, 400, 401, 4_300, 4_301, 20_000, 70_000])
    number = rng.choice(["", "-"]) + "9" * digits
    if rng.random() < 0.3:
        number = rng.choice(["1e400", "-1e400", "1e-400", "1.0", "0.5", "1E999", "-0"])
    field = rng.choice(["persons", "children", "version", "occurred_at", "risk", "extra_count"])
    body = {k: v for k, v in wire.items() if k != field}
    text = json.dumps(body)[:-1] + f', "{field}": {number}}}'
    return "huge_number", text.encode(), "schema"


def m_nan(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    constant = rng.choice(["NaN", "Infinity", "-Infinity"])
    field = rng.choice(["persons", "children", "version", "division", "whatever"])
    body = {k: v for k, v in wire.items() if k != field}
    text = json.dumps(body)[:-1] + f', "{field}": {constant}}}'
    return "nan_infinity", text.encode(), "malformed"


def m_overlong(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    field = rng.choice(["event_id", "force", "division", "source", "operation"])
    limit = {"event_id": 128, "force": 40, "division": 40, "source": 64, "operation": 64}[field]
    length = rng.choice([limit + 1, limit * 2, 5_000, 70_000])
    body = dict(wire)
    body[field] = rng.choice("abcdefxyz019-") * length if field != "event_id" else "e" * length
    return "overlong_string", json.dumps(body).encode(), "schema"


def m_lookalike(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    field = rng.choice(["force", "division", "force", "division", "source", "type"])
    body = dict(wire)
    body[field] = _lookalike(rng, str(wire[field]))
    raw = json.dumps(body, ensure_ascii=rng.random() < 0.5).encode()
    return "unicode_lookalike", raw, "schema"


def m_ascii_lookalike(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    field = rng.choice(["force", "division"])
    body = dict(wire)
    swaps = {"l": "1", "o": "0", "i": "l", "e": "c", "s": "5", "a": "o"}
    value = str(wire[field])
    spots = [i for i, c in enumerate(value) if c in swaps]
    i = rng.choice(spots) if spots else 0
    body[field] = value[:i] + swaps.get(value[i], "x") + value[i + 1 :]
    return "ascii_lookalike", json.dumps(body).encode(), "unknown_division"


def m_duplicate_key(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    field = rng.choice(sorted(wire))
    other = rng.choice([wire[field], "x" + str(wire[field]), 0, None])
    text = json.dumps(wire)[:-1] + f", {json.dumps(field)}: {json.dumps(other)}}}"
    if rng.random() < 0.3:  # a duplicate key inside a nested object
        body = {k: v for k, v in wire.items() if k != "operation"}
        text = json.dumps(body)[:-1] + ', "operation": {"a": 1, "a": 2}}'
    return "duplicate_key", text.encode(), "malformed"


def m_not_utf8(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    text = json.dumps(wire)
    choice = rng.randrange(4)
    if choice == 0:
        raw = text.encode("utf-16")
    elif choice == 1:
        raw = text.replace('"source": "', '"source": "\xe9', 1).encode("latin-1")
    elif choice == 2:
        raw = b"\xef\xbb\xbf" + text.encode()  # a UTF-8 byte order mark
    else:
        raw = text.encode().replace(b'"', b'"\xc0\xaf', 1)  # overlong UTF-8
    return "not_utf8", raw, "malformed"


def m_surrogate(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    field = rng.choice(["division", "force", "source", "event_id"])
    body = {k: v for k, v in wire.items() if k != field}
    text = json.dumps(body)[:-1] + f', "{field}": "ab\\ud800cd"}}'
    return "lone_surrogate", text.encode(), "schema"


def m_schema(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    body = dict(wire)
    choice = rng.randrange(10)
    if choice == 0:
        del body[rng.choice(["version", "event_id", "occurred_at", "force", "division", "source"])]
    elif choice == 1:
        body["version"] = rng.choice([2, 0, "1", True, 1.0, None])
    elif choice == 2:
        body["occurred_at"] = rng.choice(
            [
                "2025-04-03T06:15:00",
                "2025-02-30T06:15:00Z",
                "1999-12-31T23:59:59Z",
                "2025-04-03 06:15:00Z",
                "٢٠٢٥-04-03T06:15:00Z",
                1_743_660_900,
            ]
        )
    elif choice == 3:
        body["suspect_name"] = PERSONAL  # an unknown field: never accepted, never logged
    elif choice == 4:
        body["operation"] = None
    elif choice == 5:
        body["type"] = rng.choice(["warrant", "arrest.made ", "", None, 7])
    elif choice == 6:
        body["event_id"] = rng.choice(["short", "has space in it", "slash/not/allowed", ""])
    elif choice == 7:
        body["force"] = rng.choice(["Lancashire", "x", "", "lanca_shire", "lancashire!"])
    elif choice == 8:
        if event.type == "arrest.made":
            body["persons"] = rng.choice([0, 51, -1, "2", True])
        elif event.type == "safeguarding.action":
            body["children"] = rng.choice([0, 101, "3", False])
        else:
            body["source"] = rng.choice(["UPPER", "a", "with space"])
    else:
        body["division"] = rng.choice([["east"], {"name": "east"}, 1, True])
    return "schema", json.dumps(body).encode(), "schema"


def m_unknown_division(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    body = dict(wire)
    if rng.random() < 0.5:
        body["force"] = rng.choice(["atlantis", "jonathan-quixmarker", "met"])
    else:
        body["division"] = rng.choice(["nowhere", "central", "quixmarker-street"])
    return "unknown_division", json.dumps(body).encode(), "unknown_division"


def m_future(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    body = dict(wire)
    ahead = timedelta(seconds=rng.uniform(3600, 10 * 365 * 86400))
    body["occurred_at"] = (datetime.now(event.occurred_at.tzinfo) + ahead).isoformat()
    return "future", json.dumps(body).encode(), "future"


def m_too_large(rng: random.Random, wire: dict[str, Any], event: Any) -> Built:
    raw = json.dumps(wire).encode()
    pad = MAX_VALUE_BYTES - len(raw) + rng.randrange(1, 100_000)
    return "too_large", raw[:-1] + b" " * pad + b"}", "too_large"


MUTATIONS: Final[tuple[Mutation, ...]] = (
    m_random_bytes,
    m_not_an_object,
    m_no_value,
    m_truncated,
    m_deep_nesting,
    m_huge_number,
    m_nan,
    m_overlong,
    m_lookalike,
    m_ascii_lookalike,
    m_duplicate_key,
    m_not_utf8,
    m_surrogate,
    m_schema,
    m_unknown_division,
    m_future,
    m_too_large,
)


def hostile_case(rng: random.Random, forces: dict[str, list[str]], now: datetime, n: int) -> Case:
    """One message: a defect from MUTATIONS, a type mismatch, or (1 in 7) a valid event."""
    event = _base(rng, forces, now, n)
    wire = event.to_wire()
    topic = _topic_of(event)
    key = event.event_id.encode()
    roll = rng.random()
    if roll < 0.125:
        return Case("valid", topic, key, json.dumps(wire).encode(), None, event)
    if roll < 0.15:  # valid, but not keyed by its event id: rerouted, then counted
        wrong = rng.choice([None, b"", b"not-the-id", PERSONAL.encode()])
        return Case("valid_rekeyed", topic, wrong, json.dumps(wire).encode(), None, event)
    if roll < 0.21:
        other = rng.choice([t for t in SHORT_TOPICS if t != topic])
        return Case("type_mismatch", other, key, json.dumps(wire).encode(), "type_mismatch")
    kind, value, reason = rng.choice(MUTATIONS)(rng, wire, event)
    if value is not None and len(value) > MAX_VALUE_BYTES:
        reason = "too_large"
    if rng.random() < 0.2:  # keys are not trusted either
        key = rng.choice([None, b"", rng.randbytes(rng.randrange(1, 64)), PERSONAL.encode()])
    if key is None and value is None:
        key = b""  # Kafka refuses a message with neither key nor value
    return Case(kind, topic, key, value, reason)
