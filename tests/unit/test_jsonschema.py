"""The committed JSON Schema files are current and agree with the classifier."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from services.contract import jsonschema as contract_schema
from tests.conftest import load_vector, vectors


def test_committed_schema_files_are_current() -> None:
    assert contract_schema.stale() == [], "run `opsmetrics contract schema` and commit"


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((contract_schema.SCHEMA_DIR / "event.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("path", vectors("valid"), ids=lambda p: p.stem)
def test_schema_accepts_valid_vectors(path: Path) -> None:
    _, value, _ = load_vector(path)
    assert list(_validator().iter_errors(json.loads(value))) == []


@pytest.mark.parametrize(
    "path",
    [p for p in vectors("invalid") if p.stem.startswith("schema-")],
    ids=lambda p: p.stem,
)
def test_schema_rejects_schema_vectors(path: Path) -> None:
    _, value, _ = load_vector(path)
    assert list(_validator().iter_errors(json.loads(value))) != []
