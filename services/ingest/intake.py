"""From request bytes to one classification per event (no I/O here).

The body is parsed as strictly as the classifier parses a Kafka message: strict
UTF-8, no ``NaN``/``Infinity``; an object with a duplicate key is ``malformed``.
Each item then gets its ``source`` from the token and goes through the contract's
one classifier (:meth:`Classifier.classify_object`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from opsmetrics.settings import Settings
from services.contract.classify import Accepted, Classifier, Rejected
from services.contract.events import TOPIC_OF, EventType, RejectReason

_EVENT_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
_MAX_INT_DIGITS: Final = 400
_TYPES: Final = frozenset(t.value for t in EventType)


class NotJson(ValueError):
    """The body is not one JSON object or array."""


class _DuplicateKeys:
    """Stands in for an object that repeats a key (``malformed``, as on Kafka)."""

    __slots__ = ()


class _HugeInt:
    """Stands in for an integer too long to convert; fails every field check."""

    __slots__ = ()


_DUPLICATE: Final = _DuplicateKeys()


def _pairs(pairs: list[tuple[str, Any]]) -> Any:
    obj = dict(pairs)
    return obj if len(obj) == len(pairs) else _DUPLICATE


def _constant(name: str) -> Any:
    raise NotJson(f"{name} is not JSON")


def _int(text: str) -> Any:
    return int(text) if len(text) <= _MAX_INT_DIGITS else _HugeInt()


def parse_body(body: bytes) -> tuple[list[Any], bool]:
    """The items of a body and whether it was an array; raise NotJson otherwise."""
    try:
        value = json.loads(
            body.decode("utf-8"), object_pairs_hook=_pairs, parse_constant=_constant, parse_int=_int
        )
    except UnicodeDecodeError:
        raise NotJson("the body is not UTF-8") from None
    except NotJson:
        raise
    except (ValueError, RecursionError):
        raise NotJson("the body is not valid JSON") from None
    if isinstance(value, list):
        return value, True
    if isinstance(value, dict | _DuplicateKeys):
        return [value], False
    raise NotJson("the body must be one JSON object or an array of objects")


def safe_event_id(item: Any) -> str | None:
    """The item's ``event_id`` if it is a well-formed id (ids are echoed; values never)."""
    if isinstance(item, dict):
        value = item.get("event_id")
        if isinstance(value, str) and _EVENT_ID.match(value):
            return value
    return None


def safe_type(item: Any) -> str | None:
    """The item's ``type`` if it is one of the contract's four types."""
    if isinstance(item, dict):
        value = item.get("type")
        if isinstance(value, str) and value in _TYPES:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Assessed:
    """One item's classification, with the id and type that are safe to echo and log."""

    outcome: Accepted | Rejected
    event_id: str | None
    type: str | None


def assess(
    items: Sequence[Any], source: str, classifier: Classifier, settings: Settings
) -> list[Assessed]:
    """Classify every item as sent by ``source`` (the body's ``source`` is overwritten)."""
    out = []
    unknown_topic = settings.topic("unknown")
    for item in items:
        if isinstance(item, _DuplicateKeys):
            outcome: Accepted | Rejected = Rejected(
                RejectReason.MALFORMED, None, "an object has a duplicate key"
            )
        elif not isinstance(item, dict):
            outcome = Rejected(RejectReason.MALFORMED, None, "not a JSON object")
        else:
            etype = safe_type(item)
            topic = settings.topic(TOPIC_OF[EventType(etype)]) if etype else unknown_topic
            outcome = classifier.classify_object(topic, {**item, "source": source})
        out.append(Assessed(outcome, safe_event_id(item), safe_type(item)))
    return out
