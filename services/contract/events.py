"""The event contract v1: one strict pydantic model per event type.

Every rule here is a rule of ``docs/contract.md``. The models are strict: the
string ``"3"`` is not the number 3, ``true`` is not 1, a timestamp without an
offset is rejected and so is any field the contract does not name (so personal
data cannot slip through as an extra field).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, WithJsonSchema

CONTRACT_VERSION: Final = 1
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)

# RFC 3339 date-time with a mandatory offset; ASCII digits only ([0-9], never \d).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
RFC3339_PATTERN: Final = "^" + _RFC3339.pattern + "$"


class EventType(StrEnum):
    """The four event types; the value is the ``type`` field on the wire."""

    WARRANT = "warrant.executed"
    ARREST = "arrest.made"
    SAFEGUARDING = "safeguarding.action"
    REFERRAL = "referral.received"


class RejectReason(StrEnum):
    """Why a message was rejected: the contract's six reasons."""

    MALFORMED = "malformed"
    SCHEMA = "schema"
    TYPE_MISMATCH = "type_mismatch"
    UNKNOWN_DIVISION = "unknown_division"
    FUTURE = "future"
    TOO_LARGE = "too_large"


#: Short topic name (without the configurable prefix) for each type.
TOPIC_OF: Final[dict[EventType, str]] = {
    EventType.WARRANT: "warrants",
    EventType.ARREST: "arrests",
    EventType.SAFEGUARDING: "safeguarding",
    EventType.REFERRAL: "referrals",
}
DEADLETTER_TOPIC: Final = "deadletter"

Origin = Literal["proactive", "referral"]
Referrer = Literal["nca", "ncmec", "iwf", "partner_agency", "public", "internal", "other"]
Risk = Literal["very_high", "high", "medium", "low", "ungraded"]
ORIGINS: Final[tuple[str, ...]] = get_args(Origin)
REFERRERS: Final[tuple[str, ...]] = get_args(Referrer)
RISKS: Final[tuple[str, ...]] = get_args(Risk)


def _parse_occurred_at(value: Any) -> Any:
    """Turn an RFC 3339 string with an offset into an aware datetime (else fail)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must carry an offset")
        parsed = value
    elif isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ValueError("must be RFC 3339 with an offset, e.g. 2025-04-03T06:15:00+01:00")
        try:
            parsed = datetime.fromisoformat(value.upper())
        except ValueError:
            raise ValueError("not a real date and time") from None
    else:
        raise ValueError("must be a string in RFC 3339 format")
    if parsed < EARLIEST:
        raise ValueError("must not be before 2000-01-01")
    return parsed


def _exactly_int(value: Any) -> Any:
    """Refuse booleans and floats that merely equal an integer (``true == 1``)."""
    if type(value) is not int:
        raise ValueError("must be the integer 1")
    return value


def _not_null(value: Any) -> Any:
    """An optional field is left out, not sent as ``null``."""
    if value is None:
        raise ValueError("leave the field out instead of sending null")
    return value


Version = Annotated[Literal[1], BeforeValidator(_exactly_int)]
OccurredAt = Annotated[
    datetime,
    BeforeValidator(_parse_occurred_at),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
]
EventId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{8,128}$")]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9-]{2,40}$")]
OperationSlug = Annotated[
    str | None,
    BeforeValidator(_not_null),
    Field(pattern=r"^[a-z0-9-]{1,64}$"),
    WithJsonSchema({"type": "string", "pattern": "^[a-z0-9-]{1,64}$"}),
]
SourceSlug = Annotated[str, Field(pattern=r"^[a-z0-9-]{2,64}$")]


class _EventBase(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    version: Version
    event_id: EventId
    occurred_at: OccurredAt
    force: Slug
    division: Slug
    operation: OperationSlug = None
    source: SourceSlug

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as published (no ``operation`` key when unset)."""
        data = self.model_dump(mode="json", exclude_none=True)
        data["occurred_at"] = self.occurred_at.isoformat()
        return data


class WarrantExecuted(_EventBase):
    """One warrant executed."""

    type: Literal["warrant.executed"]
    origin: Origin


class ArrestMade(_EventBase):
    """An arrest of ``persons`` people at one time and place."""

    type: Literal["arrest.made"]
    persons: Annotated[int, Field(ge=1, le=50)]
    origin: Origin
    previously_known: bool


class SafeguardingAction(_EventBase):
    """A safeguarding action that protected ``children`` children."""

    type: Literal["safeguarding.action"]
    children: Annotated[int, Field(ge=1, le=100)]


class ReferralReceived(_EventBase):
    """One referral received (for example an NCA dissemination)."""

    type: Literal["referral.received"]
    referrer: Referrer
    risk: Risk


Event = Annotated[
    WarrantExecuted | ArrestMade | SafeguardingAction | ReferralReceived,
    Field(discriminator="type"),
]
EVENT_ADAPTER: Final[TypeAdapter[Event]] = TypeAdapter(Event)
MODEL_OF: Final[dict[EventType, type[_EventBase]]] = {
    EventType.WARRANT: WarrantExecuted,
    EventType.ARREST: ArrestMade,
    EventType.SAFEGUARDING: SafeguardingAction,
    EventType.REFERRAL: ReferralReceived,
}
#: Every field name the contract allows, on any type.
KNOWN_FIELDS: Final[frozenset[str]] = frozenset(
    name for model in MODEL_OF.values() for name in model.model_fields
)
