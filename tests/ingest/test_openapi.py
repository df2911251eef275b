"""The committed OpenAPI document is the one the code generates."""

from __future__ import annotations

from services.ingest import openapi
from tests.ingest.conftest import Api


def test_committed_openapi_document_is_current() -> None:
    assert not openapi.stale(), "run `python -m services.ingest.openapi` and commit the file"


def test_document_describes_every_status_and_the_token() -> None:
    doc = openapi.document()
    post = doc["paths"]["/v1/events"]["post"]
    assert set(post["responses"]) == {
        "202",
        "207",
        "400",
        "401",
        "403",
        "413",
        "429",
        "500",
        "503",
    }
    assert post["security"] == [{"sourceToken": []}]
    assert doc["components"]["securitySchemes"]["sourceToken"]["scheme"] == "bearer"
    for name in ("ArrestMade", "ReferralReceived", "SafeguardingAction", "WarrantExecuted"):
        assert "source" not in doc["components"]["schemas"][name]["required"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][1]["maxItems"] == 500


def test_served_document_matches_the_committed_one(api: Api) -> None:
    assert api.client.get("/openapi.json").json() == openapi.document()
