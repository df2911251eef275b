"""Property-based API tests: schemathesis generates requests from the OpenAPI document.

The app runs in-process (ASGI) with a fake publisher; every response must conform
to the document (status, headers, body schema) and none may be a server error.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from opsmetrics.settings import Settings
from tests.ingest.conftest import build_api

MAX_EXAMPLES = 40

# Module level: schemathesis' fixture-based loader does not support pytest 9.
_DIR = tempfile.TemporaryDirectory(prefix="ingest-schemathesis-")
API = build_api(
    Settings(data_dir=Path(_DIR.name) / "run", log_format="console"),
    Path(_DIR.name),
    {"rms-test": {"types": ["*"], "forces": ["*"]}},  # may send anything,
    rate_per_s=1_000_000,  # with a limit schemathesis cannot reach
    burst=10_000_000,
)
# By design, and documented: an array is answered 207 even when some of its events break
# the schema (each gets its own result), and too many events is 413 (like too many bytes).
# Schema-valid events can still be refused by configuration (unknown force/division:
# 400 unknown_division) or the clock (400 future).
CONFIG = schemathesis.config.SchemathesisConfig.from_str(
    """
[checks.negative_data_rejection]
expected-statuses = ["207", "400", "401", "403", "413", "429"]
[checks.positive_data_acceptance]
expected-statuses = ["200", "202", "207", "400"]
"""
)
schema = schemathesis.openapi.from_asgi("/openapi.json", API.app, config=CONFIG)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_document(case: Any) -> None:
    case.call_and_validate(headers=API.auth())
