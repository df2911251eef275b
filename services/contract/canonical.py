"""A fast path past pydantic for events already in the contract's plain shape.

:func:`construct_valid` checks a parsed JSON object field by field against the same
rules as the models in :mod:`services.contract.events` (exact types, patterns,
ranges, enumerations, no extra field, occurred_at through the models' own parser)
and builds the model with ``model_construct``. It only ever accepts: anything it is
not sure of (a wrong type, an unknown field, a failed pattern, a non-dict) returns
None, and the caller runs full validation, which then accepts or rejects with its
own reason and field. So a decision never differs from full validation's, which
tests/unit/test_canonical.py checks on generated objects of valid and invalid fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from services.contract.events import (
    ORIGINS,
    REFERRERS,
    RISKS,
    ArrestMade,
    ReferralReceived,
    SafeguardingAction,
    WarrantExecuted,
    _parse_occurred_at,
)

AnyEvent = WarrantExecuted | ArrestMade | SafeguardingAction | ReferralReceived

# The models' patterns (events.py), matched whole; pydantic's regex engine anchors
# ``^...$`` at the ends of the text only, as ``fullmatch`` does.
_EVENT_ID: Final = re.compile(r"[A-Za-z0-9._:-]{8,128}").fullmatch
_SLUG: Final = re.compile(r"[a-z0-9-]{2,40}").fullmatch
_OPERATION: Final = re.compile(r"[a-z0-9-]{1,64}").fullmatch
_SOURCE: Final = re.compile(r"[a-z0-9-]{2,64}").fullmatch

# Fields every event has, besides the type's own; ``operation`` is optional.
_COMMON: Final = 7  # version, event_id, occurred_at, force, division, source, type


# Strings known to match a pattern (forces, divisions and sources repeat): a dict
# read instead of a regex; each forgets everything past 4,096 strings.
_SLUGS: Final[dict[str, bool]] = {}
_SOURCES: Final[dict[str, bool]] = {}


def _matches(value: str, match: Callable[[str], Any], known: dict[str, bool]) -> bool:
    """Whether ``value`` matches, remembered in ``known``."""
    if len(known) >= 4096:
        known.clear()
    ok = known[value] = match(value) is not None
    return ok


def construct_valid(obj: Mapping[str, Any]) -> AnyEvent | None:
    """The event ``obj`` is, when it is certainly valid; None means "validate fully"."""
    if type(obj) is not dict:
        return None
    try:
        kind = obj["type"]
        version = obj["version"]
        event_id = obj["event_id"]
        occurred_at = obj["occurred_at"]
        force = obj["force"]
        division = obj["division"]
        source = obj["source"]
    except KeyError:
        return None
    if (
        type(version) is not int
        or version != 1
        or type(event_id) is not str
        or type(force) is not str
        or type(division) is not str
        or type(source) is not str
        or type(occurred_at) is not str
        or type(kind) is not str
        or not (_SLUGS.get(force) or _matches(force, _SLUG, _SLUGS))
        or not (_SLUGS.get(division) or _matches(division, _SLUG, _SLUGS))
        or not (_SOURCES.get(source) or _matches(source, _SOURCE, _SOURCES))
        or _EVENT_ID(event_id) is None
    ):
        return None
    fields = _COMMON
    operation = None
    if "operation" in obj:
        operation = obj["operation"]
        if type(operation) is not str or _OPERATION(operation) is None:
            return None
        fields += 1
    try:
        occurred = _parse_occurred_at(occurred_at)
    except ValueError:
        return None
    # The models' fields in their order (as validation fills __dict__, and dumps them).
    values = {
        "version": version,
        "event_id": event_id,
        "occurred_at": occurred,
        "force": force,
        "division": division,
        "operation": operation,
        "source": source,
        "type": kind,
    }
    model: type[AnyEvent]
    if kind == "referral.received":
        model, fields = ReferralReceived, fields + 2
        referrer, risk = obj.get("referrer"), obj.get("risk")
        if not (
            type(referrer) is str
            and referrer in _REFERRERS
            and type(risk) is str
            and risk in _RISKS
        ):
            return None
        values["referrer"], values["risk"] = referrer, risk
    elif kind == "warrant.executed":
        model, fields = WarrantExecuted, fields + 1
        origin = obj.get("origin")
        if type(origin) is not str or origin not in _ORIGINS:
            return None
        values["origin"] = origin
    elif kind == "arrest.made":
        model, fields = ArrestMade, fields + 3
        persons, origin, known = obj.get("persons"), obj.get("origin"), obj.get("previously_known")
        if (
            type(persons) is not int
            or not 1 <= persons <= 50
            or type(origin) is not str
            or origin not in _ORIGINS
            or type(known) is not bool
        ):
            return None
        values["persons"], values["origin"], values["previously_known"] = persons, origin, known
    elif kind == "safeguarding.action":
        model, fields = SafeguardingAction, fields + 1
        children = obj.get("children")
        if type(children) is not int or not 1 <= children <= 100:
            return None
        values["children"] = children
    else:
        return None
    if len(obj) != fields:
        return None  # a field the contract does not allow
    # What ``model_construct`` does (at a third of its cost): the instance's attributes
    # exactly as validation sets them (test_canonical.py compares all four).
    event = _new(model)
    _set(event, "__dict__", values)
    _set(event, "__pydantic_fields_set__", set(obj))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


_new: Final = object.__new__
_set: Final = object.__setattr__


# Enumerations (``in`` only after checking the value is a str, never a subclass).
_ORIGINS: Final = frozenset(ORIGINS)
_REFERRERS: Final = frozenset(REFERRERS)
_RISKS: Final = frozenset(RISKS)
