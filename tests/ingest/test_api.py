"""Status codes and per-event results of POST /v1/events (fake publisher, no Kafka)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from services.ingest.models import ErrorBody, Results
from tests.ingest.conftest import Api
from tests.ingest.support import event


def _results(resp: Any) -> Results:
    return Results.model_validate(resp.json())


def _error(resp: Any) -> ErrorBody:
    return ErrorBody.model_validate(resp.json())


# --------------------------------------------------------------------------- 401
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer opsi_not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["missing", "unknown", "empty", "basic"],
)
def test_401_without_a_valid_token(api: Api, headers: dict[str, str]) -> None:
    resp = api.client.post("/v1/events", json=event(), headers=headers)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert _error(resp).error == "unauthorized"
    assert api.publisher.published == []


def test_401_comes_before_reading_the_body(make_api: Callable[..., Api]) -> None:
    api = make_api(max_body_bytes=1024)
    resp = api.client.post("/v1/events", content=b"x" * 5000)
    assert resp.status_code == 401


# --------------------------------------------------------------------------- 202 / 400 single
def test_202_single_event_accepted_with_source_from_the_token(api: Api) -> None:
    ev = event("arrest.made", source="someone-else")
    resp = api.post(ev)
    assert resp.status_code == 202
    body = _results(resp)
    assert (body.accepted, body.duplicate, body.rejected) == (1, 0, 0)
    assert body.results[0].outcome == "accepted"
    assert body.results[0].event_id == ev["event_id"]
    [published] = api.publisher.published
    assert published.source == "rms-test"
    assert published.event_id == ev["event_id"]


def test_missing_source_is_filled_in(api: Api) -> None:
    ev = event()
    assert "source" not in ev
    assert api.post(ev).status_code == 202
    assert api.publisher.published[0].source == "rms-test"


def test_202_duplicate_when_sent_again(api: Api) -> None:
    ev = event()
    assert api.post(ev).json()["results"][0]["outcome"] == "accepted"
    again = api.post(ev)
    assert again.status_code == 202
    assert _results(again).results[0].outcome == "duplicate"
    assert len(api.publisher.published) == 1


def test_same_id_with_another_type_is_not_a_duplicate(api: Api) -> None:
    ev = event("warrant.executed")
    api.post(ev)
    other = event("safeguarding.action", event_id=ev["event_id"])
    assert _results(api.post(other)).results[0].outcome == "accepted"


def test_400_single_rejected_event_names_reason_and_field_not_values(api: Api) -> None:
    secret = "Jane Doe 12 High Street"
    resp = api.post(event("arrest.made", persons=0))
    assert resp.status_code == 400
    item = _results(resp).results[0]
    assert (item.outcome, item.reason, item.field) == ("rejected", "schema", "persons")
    resp = api.post(event(suspect_name=secret))
    assert resp.status_code == 400
    assert _results(resp).results[0].reason == "schema"
    assert secret not in resp.text
    assert "suspect_name" not in resp.text  # an unknown key may itself be personal data
    assert api.publisher.published == []


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ({"division": "north"}, "unknown_division", "division"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "future", "occurred_at"),
        ({"version": 2}, "schema", "version"),
        ({"persons": 10**1000}, "schema", "persons"),
    ],
)
def test_contract_reasons(api: Api, fields: dict[str, Any], reason: str, field: str) -> None:
    body = event("arrest.made")
    body.update(fields)
    item = _results(api.post(body)).results[0]
    assert (item.reason, item.field) == (reason, field)


def test_malformed_event_id_is_not_echoed(api: Api) -> None:
    resp = api.post(event(event_id="Jane Doe"))
    item = _results(resp).results[0]
    assert (item.reason, item.field, item.event_id) == ("schema", "event_id", None)
    assert "Jane" not in resp.text


def test_object_with_a_duplicate_key_is_malformed(api: Api) -> None:
    text = json.dumps(event())[:-1] + ', "force": "lancashire"}'
    resp = api.client.post("/v1/events", content=text, headers=api.auth())
    assert resp.status_code == 400
    assert _results(resp).results[0].reason == "malformed"


# --------------------------------------------------------------------------- 400 body
@pytest.mark.parametrize(
    "content",
    [b"not json", b'{"a": 1', b"\xff\xfe{}", b'{"persons": NaN}', b"42", b'"text"', b"null"],
    ids=["text", "truncated", "not-utf8", "nan", "number", "string", "null"],
)
def test_400_body_not_one_json_object_or_array(api: Api, content: bytes) -> None:
    resp = api.client.post("/v1/events", content=content, headers=api.auth())
    assert resp.status_code == 400
    assert _error(resp).error == "not_json"


def test_400_empty_array(api: Api) -> None:
    resp = api.post([])
    assert resp.status_code == 400
    assert _error(resp).error == "empty_batch"


def test_deeply_nested_body_is_400_not_500(api: Api) -> None:
    resp = api.client.post("/v1/events", content=b"[" * 100_000, headers=api.auth())
    assert resp.status_code == 400


# --------------------------------------------------------------------------- 207 batch
def test_207_batch_has_one_result_per_event_in_order(api: Api) -> None:
    first = event("warrant.executed")
    batch = [
        first,
        event("arrest.made", persons=99),
        "not an object",
        first,  # repeated within the request
        event("safeguarding.action"),
    ]
    resp = api.post(batch)
    assert resp.status_code == 207
    body = _results(resp)
    assert [r.outcome for r in body.results] == [
        "accepted",
        "rejected",
        "rejected",
        "duplicate",
        "accepted",
    ]
    assert [r.index for r in body.results] == [0, 1, 2, 3, 4]
    assert (body.accepted, body.duplicate, body.rejected) == (2, 1, 2)
    assert body.results[2].reason == "malformed"
    assert len(api.publisher.published) == 2


def test_207_batch_sent_twice_is_all_duplicate(api: Api) -> None:
    batch = [event() for _ in range(20)]
    assert _results(api.post(batch)).accepted == 20
    again = _results(api.post(batch))
    assert (again.accepted, again.duplicate) == (0, 20)
    assert len(api.publisher.published) == 20


def test_a_single_element_array_is_a_batch(api: Api) -> None:
    assert api.post([event()]).status_code == 207


# --------------------------------------------------------------------------- 413
def test_413_body_over_the_size_limit(make_api: Callable[..., Api]) -> None:
    api = make_api(max_body_bytes=4096)
    big = [event() for _ in range(40)]
    resp = api.post(big)
    assert resp.status_code == 413
    assert _error(resp).error == "too_large"
    assert api.publisher.published == []


def test_413_is_measured_not_trusted_from_content_length(make_api: Callable[..., Api]) -> None:
    api = make_api(max_body_bytes=4096)

    def chunks() -> Any:
        for _ in range(10):
            yield b" " * 1000

    resp = api.client.post("/v1/events", content=chunks(), headers=api.auth())
    assert resp.status_code == 413


def test_413_too_many_events(make_api: Callable[..., Api]) -> None:
    api = make_api(max_events=10)
    resp = api.post([event() for _ in range(11)])
    assert resp.status_code == 413
    assert _error(resp).error == "too_many_events"
    assert api.post([event() for _ in range(10)]).status_code == 207


def test_500_events_is_allowed_and_501_is_not(api: Api) -> None:
    assert api.post([event() for _ in range(500)]).status_code == 207
    api.clock[0] += 3600  # refill the rate limit
    assert api.post([event() for _ in range(501)]).status_code == 413


# --------------------------------------------------------------------------- 429
def test_429_over_the_rate_limit_with_retry_after(make_api: Callable[..., Api]) -> None:
    api = make_api(rate_per_s=10, burst=500)
    assert api.post([event() for _ in range(400)]).status_code == 207
    resp = api.post([event() for _ in range(200)])
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "10"  # 100 missing tokens at 10/s
    assert _error(resp).error == "rate_limited"
    assert len(api.publisher.published) == 400
    # the limit is per source
    assert api.post([event("referral.received")], source="referrals-only").status_code == 207
    api.clock[0] += 10
    assert api.post([event() for _ in range(200)]).status_code == 207


def test_per_source_rate_from_the_sources_file(make_api: Callable[..., Api]) -> None:
    api = make_api(
        {"slow": {"types": ["*"], "forces": ["*"], "rate_per_s": 1.0, "burst": 500}},
        rate_per_s=1000,
    )
    assert api.post([event() for _ in range(500)], source="slow").status_code == 207
    resp = api.post(event(), source="slow")
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "1"


# --------------------------------------------------------------------------- 403
def test_403_for_a_type_the_source_may_not_send(api: Api) -> None:
    batch = [event("referral.received"), event("arrest.made"), event("referral.received")]
    resp = api.post(batch, source="referrals-only")
    assert resp.status_code == 403
    body = _error(resp)
    assert body.error == "forbidden"
    assert [(i.index, i.field) for i in body.items or []] == [(1, "type")]
    assert api.publisher.published == []


def test_403_for_a_force_the_source_may_not_send(make_api: Callable[..., Api]) -> None:
    api = make_api({"one-force": {"types": ["*"], "forces": ["lancashire"]}})
    resp = api.post(event(force="merseyside"), source="one-force")
    assert resp.status_code == 403
    assert _error(resp).items[0].field == "force"  # type: ignore[index]


def test_unknown_force_for_an_all_forces_source_is_a_contract_rejection(api: Api) -> None:
    resp = api.post(event(force="merseyside"), source="referrals-only")
    assert resp.status_code == 400
    assert _results(resp).results[0].reason == "unknown_division"


def test_an_unknown_type_is_a_schema_rejection_not_403(api: Api) -> None:
    resp = api.post(event(type="burglary.reported"), source="referrals-only")
    assert resp.status_code == 400
    assert (_results(resp).results[0].reason, _results(resp).results[0].field) == (
        "schema",
        "type",
    )


# --------------------------------------------------------------------------- 503
def test_503_with_retry_after_while_kafka_is_down_then_success(api: Api) -> None:
    api.probe_problem[0] = "Kafka is not reachable"
    api.check_kafka()
    ev = event()
    resp = api.post(ev)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert _error(resp).error == "kafka_unavailable"
    assert api.client.get("/health").status_code == 503
    api.probe_problem[0] = None
    api.check_kafka()
    assert api.client.get("/health").status_code == 200
    resp = api.post(ev)
    assert resp.status_code == 202
    assert _results(resp).results[0].outcome == "accepted"  # not remembered by the 503


def test_a_failed_publish_is_503_and_nothing_is_remembered(api: Api) -> None:
    api.publisher.fail = True
    batch = [event() for _ in range(3)]
    resp = api.post(batch)
    assert resp.status_code == 503
    assert not api.link.up  # later requests fail fast until the probe succeeds
    assert api.post(event()).status_code == 503
    api.publisher.fail = False
    api.check_kafka()
    assert _results(api.post(batch)).accepted == 3


def test_kafka_down_at_start_up_the_app_still_answers(make_api: Callable[..., Api]) -> None:
    api = make_api()
    api.link._publisher = None  # as if the first probe never succeeded
    api.probe_problem[0] = "Kafka is not reachable"
    api.check_kafka()
    assert api.client.get("/health").json() == {
        "status": "unavailable",
        "problem": "Kafka is not reachable",
    }
    assert api.post(event()).status_code == 503
    api.probe_problem[0] = None
    api.check_kafka()
    assert api.post(event()).status_code == 202


def test_all_duplicates_need_no_kafka(api: Api) -> None:
    ev = event()
    api.post(ev)
    api.probe_problem[0] = "down"
    api.check_kafka()
    resp = api.post(ev)
    assert resp.status_code == 202
    assert _results(resp).results[0].outcome == "duplicate"


# --------------------------------------------------------------------------- 500
def test_unexpected_error_is_500_without_a_traceback(api: Api) -> None:
    def boom(*_: Any) -> Any:
        raise RuntimeError("Jane Doe")

    api.service.dedup.seen = boom  # type: ignore[method-assign,assignment]
    with capture_logs() as logs:
        resp = api.post(event())
    assert resp.status_code == 500
    assert _error(resp).error == "internal"
    assert "Jane" not in repr(logs)
    assert api.publisher.published == []


# --------------------------------------------------------------------------- health, metrics
def test_health_and_metrics(api: Api) -> None:
    assert api.client.get("/health").json() == {"status": "ok"}
    api.post([event(), event("arrest.made", persons=0)])
    api.post(event(), source=None)
    text = api.client.get("/metrics").text
    assert 'ops_ingest_requests_total{status="207"} 1.0' in text
    assert 'ops_ingest_requests_total{status="401"} 1.0' in text
    assert 'ops_ingest_requests_total{status="503"} 0.0' in text
    assert 'ops_ingest_events_total{outcome="accepted",reason="",source="rms-test"} 1.0' in text
    assert (
        'ops_ingest_events_total{outcome="rejected",reason="schema",source="rms-test"} 1.0' in text
    )
    assert (
        'ops_ingest_events_total{outcome="duplicate",reason="",source="referrals-only"} 0.0' in text
    )
    assert "ops_ingest_request_duration_seconds_count 2.0" in text
    assert "ops_ingest_kafka_up 1.0" in text


# --------------------------------------------------------------------------- logs
def test_no_token_or_event_content_in_logs(api: Api) -> None:
    secret = "Jane Doe 12 High Street"
    token = api.tokens["rms-test"]
    with capture_logs() as logs:
        api.post([event(), event(division="north"), event(suspect_name=secret)])
        api.post(event(), source="referrals-only")
        api.post(event(persons=secret))
        api.client.post("/v1/events", json=event(), headers={"Authorization": f"Bearer {token}x"})
        api.client.post("/v1/events", content=secret.encode(), headers=api.auth())
    text = repr(logs)
    assert logs, "expected log events"
    for forbidden in (token, secret, "suspect_name", "north", "lancashire"):
        assert forbidden not in text
    allowed = {
        "event",
        "log_level",
        "source",
        "status",
        "error",
        "events",
        "accepted",
        "duplicate",
        "rejected",
        "event_id",
        "type",
        "reason",
        "field",
        "outcome",
        "token_given",
    }
    for entry in logs:
        assert set(entry) <= allowed, entry
