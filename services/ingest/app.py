"""The ingest API (FastAPI): ``POST /v1/events``, ``GET /health``, ``GET /metrics``.

Checks run in this order, each refusing the whole request (nothing published):
token (401), body size (413), JSON (400), number of events (413), rate (429),
types and forces the source may send (403). Then every event is classified by
the contract's classifier; accepted events already seen are "duplicate", the
others are published and reported "accepted" only after Kafka's acknowledgement.
If Kafka cannot take them the answer is 503 with ``Retry-After``: send the same
request again (repeats are harmless, the stream counts each ``event_id`` once).

Logs carry ids, types, outcomes and reasons only: never a token or event content.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Final

import anyio
import anyio.to_thread
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from opsmetrics.settings import Settings
from services.contract.classify import Accepted, Classifier, Rejected
from services.ingest.auth import Authenticator, Source, load_sources
from services.ingest.config import IngestSettings
from services.ingest.dedup import DedupStore, Key
from services.ingest.intake import Assessed, NotJson, assess, parse_body
from services.ingest.kafka_link import KafkaDown, KafkaLink, PublisherLike, probe_kafka
from services.ingest.limits import RateLimiter
from services.ingest.metrics import IngestMetrics
from services.ingest.models import (
    ErrorBody,
    ErrorCode,
    Health,
    ItemResult,
    Outcome,
    RefusedItem,
    Results,
    event_schemas,
    request_body,
)

log = structlog.get_logger(__name__)

API_VERSION: Final = "1.0.0"
DESCRIPTION: Final = """\
An HTTP front door to the operational event stream for records-management and case
systems that do not run a Kafka client. Send contract v1 events (one object, or an
array of up to 500); each is accepted, duplicate or rejected with the contract's
reason. An accepted event has been acknowledged by Kafka. See docs/ingest.md.
"""

_RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "Seconds to wait before sending the same request again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
_WWW_AUTHENTICATE: Final = {
    "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
}

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="sourceToken",
    description="The sending system's token (made by `opsmetrics ingest-token`).",
)


def _json(status: int, body: BaseModel, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body.model_dump_json(exclude_none=True),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _error(
    status: int,
    code: ErrorCode,
    detail: str,
    headers: dict[str, str] | None = None,
    items: list[RefusedItem] | None = None,
) -> Response:
    return _json(status, ErrorBody(error=code, detail=detail, items=items), headers)


@dataclass
class IngestService:
    """Everything one running API holds; ``handle`` answers ``POST /v1/events``."""

    settings: Settings
    ingest: IngestSettings
    auth: Authenticator
    limiter: RateLimiter
    dedup: DedupStore
    link: KafkaLink
    classifier: Classifier
    metrics: IngestMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = IngestMetrics(self.auth.sources)

    async def handle(self, request: Request, token: str | None) -> Response:
        """Answer one POST /v1/events, timing it and counting its status."""
        started = time.perf_counter()
        try:
            response = await self._handle(request, token)
        except Exception as exc:  # noqa: BLE001 - no traceback (it may hold event data) in a log
            log.error("ingest_internal_error", error_type=type(exc).__name__)
            response = _error(500, "internal", "internal error; nothing was reported accepted")
        self.metrics.request(response.status_code, time.perf_counter() - started)
        return response

    async def _handle(self, request: Request, token: str | None) -> Response:
        source = self.auth.authenticate(token)
        if source is None:
            log.info("ingest_unauthorized", token_given=bool(token))
            return _error(
                401,
                "unauthorized",
                "a valid bearer token is required (Authorization: Bearer <token>)",
                {"WWW-Authenticate": 'Bearer realm="ingest"'},
            )
        log_ = log.bind(source=source.name)
        body = await self._read(request)
        if body is None:
            log_.info("ingest_refused", status=413, error="too_large")
            return _error(413, "too_large", f"the body is over {self.ingest.max_body_bytes} bytes")
        try:
            items, is_batch = parse_body(body)
        except NotJson as exc:
            log_.info("ingest_refused", status=400, error="not_json")
            return _error(400, "not_json", str(exc))
        if not items:
            return _error(400, "empty_batch", "the array holds no events")
        if len(items) > self.ingest.max_events:
            log_.info("ingest_refused", status=413, error="too_many_events", events=len(items))
            return _error(
                413,
                "too_many_events",
                f"at most {self.ingest.max_events} events per request; send several requests",
            )
        wait = self.limiter.take(source.name, len(items), source.rate_per_s, source.burst)
        if wait:
            log_.info("ingest_refused", status=429, error="rate_limited", events=len(items))
            return _error(
                429,
                "rate_limited",
                f"over this source's rate limit; retry after {wait} s",
                {"Retry-After": str(wait)},
            )
        refused = [
            RefusedItem(index=i, field=f)
            for i, item in enumerate(items)
            if isinstance(item, dict) and (f := source.refusal(item)) is not None
        ]
        if refused:
            log_.info("ingest_refused", status=403, error="forbidden", events=len(refused))
            return _error(
                403,
                "forbidden",
                "this source may not send some of these event types or forces",
                items=refused,
            )
        assessed = assess(items, source.name, self.classifier, self.settings)
        try:
            results = await self._publish(source, assessed)
        except KafkaDown:
            log_.warning("ingest_refused", status=503, error="kafka_unavailable")
            return _error(
                503,
                "kafka_unavailable",
                "Kafka cannot take events now; nothing was accepted: "
                "send the same request again after Retry-After seconds",
                {"Retry-After": str(self.ingest.retry_after_s)},
            )
        status = 207 if is_batch else (400 if results.rejected else 202)
        log_.info(
            "ingest_request",
            status=status,
            accepted=results.accepted,
            duplicate=results.duplicate,
            rejected=results.rejected,
        )
        return _json(status, results)

    async def _read(self, request: Request) -> bytes | None:
        """The body, or None as soon as it is over the size limit."""
        limit = self.ingest.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _publish(self, source: Source, assessed: list[Assessed]) -> Results:
        """Decide duplicates, publish the rest, and build the per-event results."""
        outcomes: list[Outcome] = []
        fresh: dict[Key, Any] = {}
        keys: list[Key | None] = []
        for item in assessed:
            if isinstance(item.outcome, Accepted):
                event = item.outcome.event
                key: Key = (event.type, event.event_id)
                # an id repeated within this request is a duplicate of its first sight
                outcomes.append("duplicate" if key in fresh else "accepted")
                fresh.setdefault(key, event)
                keys.append(key)
            else:
                outcomes.append("rejected")
                keys.append(None)
        if fresh:
            try:
                known = await anyio.to_thread.run_sync(self.dedup.seen, list(fresh))
            except (sqlite3.Error, OSError) as exc:  # the store is a courtesy: publish anyway
                log.warning("dedup_unavailable", error_type=type(exc).__name__)
                known = set()
            for key in known:
                del fresh[key]
            if fresh:
                await self.link.publish(list(fresh.values()))
                try:
                    await anyio.to_thread.run_sync(self.dedup.remember, list(fresh))
                except (sqlite3.Error, OSError) as exc:
                    log.warning("dedup_unavailable", error_type=type(exc).__name__)
            # An event accepted before (first sight wins) is a duplicate now.
            outcomes = [
                "duplicate" if outcome == "accepted" and key in known else outcome
                for outcome, key in zip(outcomes, keys, strict=True)
            ]
        return self._results(source, assessed, outcomes)

    def _results(
        self, source: Source, assessed: list[Assessed], outcomes: list[Outcome]
    ) -> Results:
        results: list[ItemResult] = []
        counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for index, (item, outcome) in enumerate(zip(assessed, outcomes, strict=True)):
            counts[outcome] += 1
            if isinstance(item.outcome, Rejected):
                rej = item.outcome
                results.append(
                    ItemResult(
                        index=index,
                        outcome="rejected",
                        event_id=item.event_id,
                        reason=rej.reason,
                        field=rej.field,
                        detail=rej.detail,
                    )
                )
                self.metrics.result(source.name, "rejected", rej.reason.value)
                log.info(
                    "event_rejected",
                    source=source.name,
                    event_id=item.event_id,
                    type=item.type,
                    reason=rej.reason.value,
                    field=rej.field,
                )
            else:
                results.append(ItemResult(index=index, outcome=outcome, event_id=item.event_id))
                log.debug(
                    "event_result",
                    outcome=outcome,
                    source=source.name,
                    event_id=item.event_id,
                    type=item.type,
                )
        for outcome in ("accepted", "duplicate"):
            if counts[outcome]:
                self.metrics.result(source.name, outcome, n=counts[outcome])
        return Results(
            accepted=counts["accepted"],
            duplicate=counts["duplicate"],
            rejected=counts["rejected"],
            results=results,
        )

    async def health(self) -> Response:
        """200 when Kafka can take events, else 503 with the problem."""
        self.metrics.kafka_up.set(1 if self.link.up else 0)
        if self.link.up:
            return _json(200, Health(status="ok"))
        return _json(
            503,
            Health(status="unavailable", problem=self.link.problem or "Kafka is not connected"),
            {"Retry-After": str(self.ingest.retry_after_s)},
        )


def _real_link(settings: Settings, ingest: IngestSettings) -> KafkaLink:
    from services.publisher import Publisher

    publish_settings = settings.model_copy(
        update={"kafka_request_timeout_s": ingest.publish_timeout_s}
    )

    def factory() -> PublisherLike:
        return Publisher(publish_settings, client_id="opsmetrics-ingest")

    return KafkaLink(
        factory,
        lambda: probe_kafka(settings, timeout_s=min(5.0, ingest.publish_timeout_s)),
        interval_s=ingest.health_interval_s,
    )


def create_app(
    settings: Settings,
    ingest: IngestSettings | None = None,
    *,
    auth: Authenticator | None = None,
    link: KafkaLink | None = None,
    dedup: DedupStore | None = None,
    limiter: RateLimiter | None = None,
    classifier: Classifier | None = None,
) -> FastAPI:
    """Build the API; parts not given are made from the settings (Kafka is not contacted
    until the app starts)."""
    ingest = ingest or IngestSettings()
    service = IngestService(
        settings=settings,
        ingest=ingest,
        auth=auth or load_sources(ingest.sources_file, settings.forces),
        limiter=limiter or RateLimiter(ingest.rate_per_s, ingest.burst),
        dedup=dedup
        or DedupStore(
            ingest.dedup_file or settings.data_dir / "ingest" / "dedup.sqlite3",
            timedelta(days=settings.dedup_days).total_seconds(),
        ),
        link=link or _real_link(settings, ingest),
        classifier=classifier
        or Classifier.for_prefix(
            settings.topic_prefix,
            {force: f.divisions for force, f in settings.forces.items()},
            future_tolerance=timedelta(seconds=settings.future_tolerance_s),
        ),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info(
            "ingest_starting",
            sources=len(service.auth.sources),
            max_events=ingest.max_events,
            max_body_bytes=ingest.max_body_bytes,
        )
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(service.link.run)
            yield
            tasks.cancel_scope.cancel()
        await service.link.close()
        service.dedup.close()
        log.info("ingest_stopped")

    app = FastAPI(
        title="opsmetrics ingest API",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service

    @app.post(
        "/v1/events",
        summary="Send one event or an array of up to 500",
        status_code=202,
        response_model=None,
        openapi_extra={"requestBody": request_body()},
        responses={
            202: {"model": Results, "description": "One event: accepted or duplicate."},
            207: {"model": Results, "description": "An array: one result per event, in order."},
            400: {
                "model": Results | ErrorBody,
                "description": "The body is not JSON, or the one event sent was rejected.",
            },
            401: {
                "model": ErrorBody,
                "description": "No token or an unknown token.",
                "headers": _WWW_AUTHENTICATE,
            },
            403: {"model": ErrorBody, "description": "A type or force this source may not send."},
            413: {"model": ErrorBody, "description": "Body or number of events over the limit."},
            429: {
                "model": ErrorBody,
                "description": "Over the source's rate limit.",
                "headers": _RETRY_AFTER,
            },
            500: {"model": ErrorBody, "description": "Internal error; nothing accepted."},
            503: {
                "model": ErrorBody,
                "description": "Kafka unavailable; nothing accepted: send again later.",
                "headers": _RETRY_AFTER,
            },
        },
    )
    async def post_events(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Response:
        """Publish contract v1 events; answers after Kafka acknowledged every accepted one.

        The `source` field is set from the token. A single event is answered 202
        (accepted or duplicate) or 400 (rejected); an array is answered 207 with one
        result per event, in order.
        """
        return await service.handle(request, credentials.credentials if credentials else None)

    @app.get(
        "/health",
        summary="Ready when Kafka is reachable",
        response_model=Health,
        responses={
            503: {
                "model": Health,
                "description": "Kafka is not reachable.",
                "headers": _RETRY_AFTER,
            }
        },
    )
    async def health() -> Response:
        """200 when events can be published now; 503 (with the problem) otherwise."""
        return await service.health()

    @app.get(
        "/metrics",
        summary="Prometheus metrics of this API",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        """Requests by status, events by source and outcome, latency, Kafka state."""
        service.metrics.kafka_up.set(1 if service.link.up else 0)
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            doc["components"]["schemas"].update(event_schemas())
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
