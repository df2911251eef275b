"""Response bodies of the ingest API and the request schema for the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.contract.events import EVENT_ADAPTER, RejectReason
from services.ingest.config import MAX_EVENTS_LIMIT

Outcome = Literal["accepted", "duplicate", "rejected"]
ErrorCode = Literal[
    "unauthorized",
    "forbidden",
    "not_json",
    "empty_batch",
    "too_large",
    "too_many_events",
    "rate_limited",
    "kafka_unavailable",
    "internal",
]


class ItemResult(BaseModel):
    """What happened to one event (``index`` is its position in the request)."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    outcome: Outcome
    event_id: str | None = Field(
        default=None, description="The event's id, when it is a well-formed id."
    )
    reason: RejectReason | None = Field(default=None, description="Why it was rejected.")
    field: str | None = Field(default=None, description="The contract field at fault, if one.")
    detail: str | None = Field(default=None, description="What is wrong (never a value).")


class Results(BaseModel):
    """Per-event results; ``accepted`` events were acknowledged by Kafka."""

    model_config = ConfigDict(extra="forbid")

    accepted: int = Field(ge=0)
    duplicate: int = Field(ge=0)
    rejected: int = Field(ge=0)
    results: list[ItemResult]


class RefusedItem(BaseModel):
    """An event the source may not send: its position and the field (type or force)."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    field: Literal["type", "force"]


class ErrorBody(BaseModel):
    """A refusal of the whole request; nothing in it was published."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorCode
    detail: str
    items: list[RefusedItem] | None = None


class Health(BaseModel):
    """Readiness: ``ok`` when Kafka is reachable and the event topics exist."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "unavailable"]
    problem: str | None = None


def event_schemas() -> dict[str, dict[str, Any]]:
    """Component schemas of the request events: the contract's, ``source`` optional."""
    union = EVENT_ADAPTER.json_schema(
        mode="validation", ref_template="#/components/schemas/{model}"
    )
    defs: dict[str, dict[str, Any]] = union.pop("$defs")
    for schema in defs.values():
        schema["required"] = [name for name in schema["required"] if name != "source"]
        schema["properties"]["source"]["description"] = (
            "Optional: always set by the API from the token's source."
        )
    union["title"] = "Event"
    union["description"] = "One contract v1 event (see docs/contract.md)."
    return {**defs, "Event": union}


def request_body() -> dict[str, Any]:
    """The ``requestBody`` of ``POST /v1/events``: one event or an array of events."""
    event = {"$ref": "#/components/schemas/Event"}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        event,
                        {
                            "type": "array",
                            "items": event,
                            "minItems": 1,
                            "maxItems": MAX_EVENTS_LIMIT,
                        },
                    ]
                }
            }
        },
    }
