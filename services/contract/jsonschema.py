"""JSON Schema files generated from the contract models.

The files under ``services/contract/jsonschema/`` are committed so that teams in
other languages can validate events without Python; a test regenerates them and
fails if the committed copies differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.contract.events import EVENT_ADAPTER, MODEL_OF

SCHEMA_DIR = Path(__file__).parent / "jsonschema"
_BASE_URI = "urn:opsmetrics:contract:v1:"


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, for each event type and for the union of all."""
    out: dict[str, dict[str, Any]] = {}
    for etype, model in MODEL_OF.items():
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"{_BASE_URI}{etype.value}"
        out[f"{etype.value}.schema.json"] = schema
    union = EVENT_ADAPTER.json_schema(mode="validation")
    union["$id"] = f"{_BASE_URI}event"
    union["title"] = "Event"
    out["event.schema.json"] = union
    return out


def render(schema: dict[str, Any]) -> str:
    """Stable text for a schema file."""
    return (
        json.dumps(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema},
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        paths.append(path)
    return paths


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing or differ from the models."""
    return [
        name
        for name, schema in schemas().items()
        if not (directory / name).exists()
        or (directory / name).read_text(encoding="utf-8") != render(schema)
    ]
