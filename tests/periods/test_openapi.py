"""docs/openapi-counts.yaml against the implementation.

The spec's enumerations equal the code's; every documented parameter is accepted
and every documented error produced, by a real worker (400) or by the page itself
(503, the reader made to miss its deadline); every answer validates against the
spec's schemas; and Schemathesis fuzzes the live endpoint from the spec.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import hypothesis
import pytest
import schemathesis
import yaml
from jsonschema import Draft202012Validator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from opsmetrics.settings import Settings
from services.contract.events import ORIGINS, REFERRERS, RISKS
from streams import api, periods
from tests.periods.scenario import END, START, Scenario, call

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi-counts.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
OPERATION = SPEC["paths"]["/api/v1/counts"]["get"]


def validator(name: str) -> Draft202012Validator:
    """A validator for one of the spec's component schemas."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def response_schema(status: str) -> Draft202012Validator:
    ref = OPERATION["responses"][status]["content"]["application/json"]["schema"]["$ref"]
    return validator(ref.rsplit("/", 1)[1])


# ------------------------------------------------------------------ the spec and the code
def test_spec_names_what_the_code_implements() -> None:
    schemas = SPEC["components"]["schemas"]
    assert [p["name"] for p in OPERATION["parameters"]] == list(periods.PARAMETERS)
    assert {p["name"] for p in OPERATION["parameters"] if p["required"]} == {"from", "to"}
    assert tuple(schemas["GroupBy"]["enum"]) == periods.GROUP_BY
    assert tuple(schemas["Counts"]["properties"]["group_by"]["enum"]) == (*periods.GROUP_BY, None)
    assert list(schemas["Totals"]["properties"]) == list(periods.MEASURES.values())
    assert list(schemas["GroupTotals"]["properties"]) == list(periods.MEASURES.values())
    keys = {k["title"]: k for k in schemas["GroupKey"]["oneOf"]}
    assert tuple(keys) == periods.GROUP_BY
    assert tuple(keys["origin"]["properties"]["origin"]["enum"]) == ORIGINS
    assert tuple(keys["referrer"]["properties"]["referrer"]["enum"]) == REFERRERS
    assert tuple(keys["risk"]["properties"]["risk"]["enum"]) == RISKS
    assert set(OPERATION["responses"]) == {"200", "400", "503"}
    assert str(periods.MAX_DAYS) in OPERATION["parameters"][1]["description"].replace(",", "")


def test_spec_examples_validate() -> None:
    Draft202012Validator.check_schema(SPEC["components"]["schemas"]["Counts"])
    ok = OPERATION["responses"]["200"]["content"]["application/json"]["example"]
    response_schema("200").validate(ok)
    for example in OPERATION["responses"]["400"]["content"]["application/json"][
        "examples"
    ].values():
        response_schema("400").validate(example["value"])


# ------------------------------------------------------------------ a real worker
GOOD_QUERIES = [
    {"from": START.isoformat(), "to": END.isoformat()},
    {"from": "2025-10-26", "to": "2025-10-26", "force": "lancashire"},
    {"from": "2025-06-01", "to": "2025-06-30", "division": "east"},
    *({"from": START.isoformat(), "to": END.isoformat(), "group_by": g} for g in periods.GROUP_BY),
    # every documented parameter at once
    {
        "from": "2025-05-15",
        "to": "2025-08-14",
        "force": "lancashire",
        "division": "west",
        "group_by": "week",
    },
    # a range without data, far in the past and the future
    {"from": "2000-01-01", "to": "2000-12-31", "group_by": "month"},
    {"from": "2099-01-01", "to": "2099-01-07", "group_by": "week"},
]

BAD_QUERIES = [
    ("to=2025-01-01", "from"),
    ("from=2025-01-01", "to"),
    ("from=2025-4-1&to=2025-09-30", "from"),
    ("from=2025-04-01&to=20250930", "to"),
    ("from=2025-02-30&to=2025-03-01", "from"),
    ("from=&to=2025-03-01", "from"),
    ("from=2025-09-30&to=2025-04-01", "to"),
    ("from=1900-01-01&to=2025-01-01", "to"),
    ("from=2025-04-01&to=2025-09-30&force=kent", "force"),
    ("from=2025-04-01&to=2025-09-30&division=north", "division"),
    ("from=2025-04-01&to=2025-09-30&force=lancashire&division=north", "division"),
    ("from=2025-04-01&to=2025-09-30&group_by=day", "group_by"),
    ("from=2025-04-01&to=2025-09-30&group_by=", "group_by"),
    ("from=2025-04-01&to=2025-09-30&from=2025-04-02", "from"),
    ("from=2025-04-01&to=2025-09-30&forces=lancashire", "forces"),
]


@pytest.mark.integration
def test_every_documented_parameter_is_accepted(scenario: Scenario) -> None:
    check = response_schema("200")
    for worker in scenario.workers:
        for query in GOOD_QUERIES:
            status, body = call(worker, query)
            assert status == 200, (query, body)
            check.validate(body)
            assert body["from"] == query["from"]
            assert body["to"] == query["to"]
            assert body["group_by"] == query.get("group_by")


@pytest.mark.integration
def test_every_documented_error_is_produced(scenario: Scenario) -> None:
    check = response_schema("400")
    for query, parameter in BAD_QUERIES:
        status, body = call(scenario.workers[0], query)
        assert status == 400, (query, body)
        check.validate(body)
        assert body["parameter"] == parameter, (query, body)


@pytest.mark.integration
def test_fuzzed_from_the_spec(scenario: Scenario) -> None:
    """Schemathesis: generated valid and invalid queries never break the contract."""
    schema = schemathesis.openapi.from_path(SPEC_PATH)
    operation = schema["/api/v1/counts"]["GET"]
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    base_url = scenario.workers[1].url

    @hypothesis.settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy())
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, checks=checks)

    run()


# ------------------------------------------------------------------ 503, from the page itself
class _Request(SimpleNamespace):
    query_string: str


async def test_unavailable_is_503_with_retry_after(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A reader that cannot reach the changelog's end in time gives the documented 503."""
    monkeypatch.setattr(api, "CATCH_UP_TIMEOUT_S", 0.2)
    settings = Settings(data_dir=tmp_path, kafka_bootstrap="127.0.0.1:9")
    app = faust.App("periods-test", web_enabled=True, datadir=str(tmp_path / "faust"))
    reader = periods.ChangelogReader(settings, periods.changelog_topic(settings), 6)
    api.register(app, settings, reader)  # the reader is never started: it never catches up
    view = app.web.views["/api/v1/counts"]
    response = await view.get(_Request(query_string=f"from={START}&to={END}"))
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    body = json.loads(response.body)
    response_schema_503 = validator("Unavailable")
    response_schema_503.validate(body)
    bad = await view.get(_Request(query_string="from=2025-13-01&to=2025-01-01"))
    assert bad.status == 400  # parameters are checked before Kafka is asked
